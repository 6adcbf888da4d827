"""Job and op records, typed: what `jobs.sqlite` keeps and what `api.shapes` shows clients.

Records are saved as the JSON documents earlier versions wrote as plain dicts, field for field,
so either version reads the other's. Those documents leave a field out until it means
something (an op has no `container_id` key before its container exists, a resource no `hit`
before its lease), and clients see some of them as they are (`resources`, `image`). So a field
is written when it was given (at construction, by assignment, or in the loaded JSON) or no
longer holds its default; an untouched default is left out, as before.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from ..engine.shapes import DeviceRequest
from .states import FINAL, JobState, OpState

Results = dict[str, list[str | None]]
"""An op's results by name: what its pattern matched, in Nosana's node's shape (the whole
match then each group, null for a group that took no part)."""


class _Record(BaseModel):
    @model_serializer(mode="wrap")
    def _given_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Every field but those never given that still hold their default."""
        data: dict[str, Any] = handler(self)
        for name, info in type(self).model_fields.items():
            if name in self.model_fields_set or name not in data:
                continue
            if getattr(self, name) == info.get_default(call_default_factory=True):
                del data[name]
        return data


class ImageUse(_Record):
    """The image an op ran and how the cache provided it."""

    ref: str
    entry_id: str
    hit: bool
    pulled: bool
    """Pulled by this daemon for this op (not a hit, not an image the engine already had)."""


class ResourceUse(_Record):
    """One resource of an op: where it is mounted and what the cache did for it. Until its
    lease arrives only `source` (None), `target` and `type` are given."""

    source: str | None
    target: str
    type: str
    entry_id: str | None = None
    hit: bool | None = None
    bytes_fetched: int | None = None
    path: str | None = None


class CheckRecord(_Record):
    """One health check of an exposed port, and what it saw last."""

    description: str
    """The check in words: `http GET /health expects 200`, `websocket expects "pong"`."""
    continuous: bool
    passed: bool | None = None
    """None until it has run once."""
    answer: str | None = None
    """What the service answered last (a status, the start of a body, a refused connection)."""
    checked_at: float | None = None


class EndpointRecord(_Record):
    """One exposed port of an op: where it was published and how its service is."""

    port: int
    type: str
    """As the definition says (`web`, `api`, `websocket`, `webapi`, `none`); `none` when it
    says nothing, as Nosana's node reads a bare port number."""
    address: str | None = None
    """Where the engine published it (`127.0.0.1:32768`); None until the container started."""
    health: str = "unknown"
    """`unknown` (it has no checks), `starting`, `healthy` or `unhealthy`."""
    checks: list[CheckRecord] = Field(default_factory=list)


class OpRecord(_Record):
    id: str
    type: str
    group: str | None = None
    state: OpState
    exit_code: int | None = None
    error: str | None = None
    prepare_started: float | None = None
    prepare_ended: float | None = None
    run_started: float | None = None
    ended: float | None = None
    image: ImageUse | None = None
    resources: list[ResourceUse] = Field(default_factory=list)
    lease_ids: list[int] = Field(default_factory=list)
    """The store's leases this op holds, by id: a restarted daemon releases them by id."""
    container_name: str | None = None
    container_id: str | None = None
    device_requests: list[DeviceRequest] = Field(default_factory=list)
    """As the engine recorded them at the container's create (`[]` without a GPU)."""
    ports: dict[str, str] = Field(default_factory=dict)
    results: Results = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    writable_layers: list[str] = Field(default_factory=list)
    """Docker volumes (copy-on-write layers over views) that go when the op ends."""
    endpoints: list[EndpointRecord] = Field(default_factory=list)
    ready_at: float | None = None
    """When every health check of every exposed port had passed (the op's service is up)."""
    restarts: int = 0
    """How often the engine restarted the container under its `restart_policy`."""
    not_acted_on: list[str] = Field(default_factory=list)
    """What the op's definition asks that the daemon accepts but does not do."""
    hub_bypassed: str | None = None
    """Why the op's Hub downloads go around the cache (the job sets `HF_ENDPOINT`, offline
    mode...): None when they go through it."""

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def health(self) -> tuple[str | None, str | None]:
        """The op's service as a whole: None (it exposes nothing), `starting`, `healthy` or
        `unhealthy`, and what is wrong, naming the check, while it is not healthy."""
        if not self.endpoints:
            return None, None
        if self.ready_at is None:
            return "starting", _first_failure(self.endpoints)
        if any(e.health == "unhealthy" for e in self.endpoints):
            return "unhealthy", _first_failure(self.endpoints)
        return "healthy", None


def _first_failure(endpoints: list[EndpointRecord]) -> str | None:
    for endpoint in endpoints:
        for check in endpoint.checks:
            if check.passed is False:
                return f"port {endpoint.port}: {check.description}: {check.answer}"
    return None


class JobRecord(_Record):
    id: str
    state: JobState
    created: float
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    definition: Any
    """The definition as submitted, credentials included (a restart may need them again)."""
    ops: list[OpRecord]
    not_acted_on: list[str] = Field(default_factory=list)
    """What the job's definition asks beyond its ops that the daemon does not do."""

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def op(self, op_id: str) -> OpRecord:
        return next(op for op in self.ops if op.id == op_id)

    def derive_state(self) -> JobState:
        """The job's state from its ops': the first failure decides; running beats
        preparing; between two ops the job is running."""
        states = [op.state for op in self.ops]
        if self.ended:
            if OpState.FAILED in states:
                return JobState.FAILED
            if all(s == OpState.COMPLETED for s in states):
                return JobState.COMPLETED
            return JobState.STOPPED
        if OpState.RUNNING in states:
            return JobState.RUNNING
        if OpState.PREPARING in states:
            return JobState.PREPARING
        if any(s in FINAL for s in states):
            return JobState.RUNNING
        return JobState.QUEUED

    def to_json(self) -> str:
        # json.dumps rather than pydantic's writer: the definition is the client's JSON, kept
        # as Python's json module reads and writes it (NaN included).
        return json.dumps(self.model_dump())

    @classmethod
    def from_json(cls, text: str) -> JobRecord:
        return cls.model_validate(json.loads(text))
