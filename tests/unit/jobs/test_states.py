"""Job and op states: the names SPEC.md gives, one vocabulary for both, FINAL defined once."""

from __future__ import annotations

from daemon.jobs.states import FINAL, JobState, OpState


def test_jobs_and_ops_share_the_states_spec_names() -> None:
    names = ["queued", "preparing", "running", "completed", "failed", "stopped"]
    assert [s.value for s in JobState] == names
    assert [s.value for s in OpState] == names
    assert {s for s in JobState if s in FINAL} == {"completed", "failed", "stopped"}
    assert {s for s in OpState if s in FINAL} == {"completed", "failed", "stopped"}
    assert "failed" in FINAL  # a state read back from the API's JSON, a plain string
