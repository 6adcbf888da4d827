"""The states a job and its ops go through (SPEC.md names them; clients match on the strings).

    queued → preparing → running → completed | failed | stopped

An op moves along this line; a job's state is derived from its ops' (`JobRecord.derive_state`).
The two are separate types because they mean different things (a job is `running` between two
ops), but they share one vocabulary, and `FINAL` is the one place that says which states end.

This module imports nothing of the daemon, so that the CLI can use it without loading the
runner.
"""

from __future__ import annotations

from enum import StrEnum


class OpState(StrEnum):
    QUEUED = "queued"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


class JobState(StrEnum):
    QUEUED = "queued"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


FINAL: frozenset[str] = frozenset({OpState.COMPLETED, OpState.FAILED, OpState.STOPPED})
"""States that nothing leaves, for jobs and ops alike (both are `str`s, and so is the `state`
of a record read back from the API)."""
