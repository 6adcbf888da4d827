"""Nosana's `%%...%%` literals: what they look like and when they are known.

A job definition may hold literals that Nosana's node fills in when an op starts:
`%%global.variables.X%%` (the job's own `global.variables`; the daemon fills these before it
validates), `%%ops.<id>.results.<name>%%` (what an earlier op printed), `%%global.job%%` and
its kin. Nosana's validator takes a literal standing alone (`WHOLE_LITERAL`) where a value of
another kind is due: an exposed port, a `__spread__` marker's value. Anywhere else a literal is
text inside a string, and a value that still holds one after the daemon's own filling is only
known at run time: checks of its form (an absolute path, a repo id, a model name) wait.

Resource models are shared by jobs and by the standalone resource routes; only in a job may a
field hold a literal, and only there does Nosana refuse `null` for a left-out property. The
validation context says which (`JOB`, read with `in_job`).
"""

from __future__ import annotations

import re
from typing import Any, Final

from pydantic import ValidationInfo

# Nosana's `/^%%(ops|global).[^%]+%%$/` as JavaScript reads it: its `.` is any character but a
# line terminator, and its `$` is the end of the string (Python's would allow a final newline).
WHOLE_LITERAL: Final = re.compile(r"%%(?:ops|global)[^\n\r\u2028\u2029][^%]+%%")
_RUN_TIME = re.compile(r"%%(?:ops|globals?)\.[^%]+%%")

JOB: Final = {"job": True}
"""The validation context of a job definition's models."""


def is_whole_literal(value: Any) -> bool:
    """A string that Nosana takes as a literal in place of another value."""
    return isinstance(value, str) and WHOLE_LITERAL.fullmatch(value) is not None


def known_at_run_time(value: str) -> bool:
    """Holds a literal that only the op's start can fill (an op's results, the job's id)."""
    return _RUN_TIME.search(value) is not None


def in_job(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("job"))


def deferred(value: str, info: ValidationInfo) -> bool:
    """Whether a check of `value`'s form waits for run time (a literal in a job)."""
    return in_job(info) and known_at_run_time(value)
