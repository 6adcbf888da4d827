"""Jobs as the API shows them: a job record with its ops' states, exit codes, timings, cache
hits and ports, timestamps in ISO 8601, and the definition with its credentials masked."""

from __future__ import annotations

from typing import Any, Literal

from ...engine.shapes import DeviceRequest
from ...jobs.models import ImageUse as ImageRecord
from ...jobs.models import JobRecord, OpRecord
from ...jobs.models import ResourceUse as ResourceRecord
from ...jobs.states import JobState, OpState
from ...util.wire import Instant, Omitted, body
from .endpoints import PRIVATE, Endpoint

SECRET_FIELDS = frozenset({"password", "accessToken", "SECRET_ACCESS_KEY"})
"""Fields of a job definition that hold credentials (registry password, HF token, S3 secret):
kept for the daemon's own use (a restart may need to pull again), never shown back."""


def redacted(document: Any) -> Any:
    """`document` with every credential field's value replaced by `***`."""
    if isinstance(document, dict):
        return {
            key: "***" if key in SECRET_FIELDS and value else redacted(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [redacted(item) for item in document]
    return document


@body
class ImageUse:
    """The image an op ran: its entry, whether it was a hit, whether this op pulled it."""

    ref: str
    entry_id: str
    hit: bool
    pulled: bool

    @classmethod
    def of(cls, image: ImageRecord) -> ImageUse:
        return cls(ref=image.ref, entry_id=image.entry_id, hit=image.hit, pulled=image.pulled)


@body
class ResourceUse:
    """One resource of an op, mounted at `target`; the entry and how the cache provided it
    are there once its lease arrived."""

    source: str | None
    target: str
    type: str
    entry_id: Omitted[str] = None
    hit: Omitted[bool] = None
    bytes_fetched: Omitted[int] = None
    path: Omitted[str] = None

    @classmethod
    def of(cls, use: ResourceRecord) -> ResourceUse:
        return cls(
            source=use.source,
            target=use.target,
            type=use.type,
            entry_id=use.entry_id,
            hit=use.hit,
            bytes_fetched=use.bytes_fetched,
            path=use.path,
        )


@body
class OpCache:
    """What the cache did for the op: entries it found, entries it fetched, bytes fetched."""

    hits: int
    misses: int
    bytes_fetched: int

    @classmethod
    def of(cls, op: OpRecord) -> OpCache:
        image, resources = op.image, op.resources
        return cls(
            hits=sum(1 for r in resources if r.hit) + int(bool(image and image.hit)),
            misses=sum(1 for r in resources if r.hit is False)
            + int(image is not None and image.hit is False),
            bytes_fetched=sum(r.bytes_fetched or 0 for r in resources),
        )


@body
class OpTimings:
    """When the op's phases began and how long they took. `ready_seconds` is its
    time-to-ready: from the op's start (its preparation's) until every health check of every
    exposed port had passed (the op's `ready_at`)."""

    prepare_seconds: float | None
    run_seconds: float | None
    ready_seconds: float | None
    prepare_started_at: Instant
    run_started_at: Instant
    ended_at: Instant

    @classmethod
    def of(cls, op: OpRecord) -> OpTimings:
        return cls(
            prepare_seconds=_span(op.prepare_started, op.prepare_ended),
            run_seconds=_span(op.run_started, op.ended),
            ready_seconds=_span(op.prepare_started or op.run_started, op.ready_at),
            prepare_started_at=op.prepare_started,
            run_started_at=op.run_started,
            ended_at=op.ended,
        )


@body
class Op:
    """One op of a job. `ports` maps each exposed container port to its host address (a
    private op's are `private` in listings); `endpoints` says more of each. `health` is None
    for an op that exposes nothing, else `starting` until its checks have passed (then
    `ready_at` is set), `healthy`, or `unhealthy` while a continuous check fails;
    `health_detail` names the check that is failing. `not_acted_on` lists what the definition
    asks of this op that the daemon accepts but does not do. `hub_bypassed` says why the op's
    Hugging Face downloads go around the cache (its own `HF_ENDPOINT`, offline mode...), None
    when its containers are pointed at the daemon's Hub endpoint."""

    id: str
    type: Literal["container/run", "container/create-volume"]
    group: str | None
    state: OpState
    exit_code: int | None
    error: str | None
    container_id: str | None
    image: ImageUse | None
    resources: list[ResourceUse]
    cache: OpCache
    timings: OpTimings
    ports: dict[str, str]
    endpoints: list[Endpoint]
    ready_at: Instant
    health: Literal["starting", "healthy", "unhealthy"] | None
    health_detail: str | None
    restarts: int
    results: dict[str, list[str | None]]
    device_requests: list[DeviceRequest]
    warnings: list[str]
    not_acted_on: list[str]
    hub_bypassed: str | None

    @classmethod
    def of(cls, op: OpRecord, *, private: bool = False, listing: bool = False) -> Op:
        hide = private and listing
        health, detail = op.health()
        return cls(
            id=op.id,
            type=op.type,  # type: ignore[arg-type]  # the record keeps the definition's type
            group=op.group,
            state=op.state,
            exit_code=op.exit_code,
            error=op.error,
            container_id=op.container_id,
            image=ImageUse.of(op.image) if op.image else None,
            resources=[ResourceUse.of(r) for r in op.resources],
            cache=OpCache.of(op),
            timings=OpTimings.of(op),
            ports=dict.fromkeys(op.ports, PRIVATE) if hide else op.ports,
            endpoints=[Endpoint.of(e, private=private, hide=hide) for e in op.endpoints],
            ready_at=op.ready_at,
            health=health,  # type: ignore[arg-type]  # OpRecord.health's words
            health_detail=detail,
            restarts=op.restarts,
            results=op.results,
            device_requests=op.device_requests,
            warnings=op.warnings,
            not_acted_on=op.not_acted_on,
            hub_bypassed=op.hub_bypassed,
        )


@body
class Job:
    """A job and its ops; `definition` (credentials masked) when one job is asked for."""

    id: str
    state: JobState
    created_at: Instant
    started_at: Instant
    ended_at: Instant
    error: str | None
    ops: list[Op]
    not_acted_on: list[str]
    """What the definition asks beyond its ops (`logistics`, `deployment_id`) that the
    daemon accepts but does not do."""
    definition: Omitted[Any] = None

    @classmethod
    def of(cls, record: JobRecord, *, definition: bool = True) -> Job:
        """One job (`definition`), or a job in a listing (private ops' addresses hidden)."""
        private = private_ops(record.definition)
        return cls(
            id=record.id,
            state=record.state,
            created_at=record.created,
            started_at=record.started,
            ended_at=record.ended,
            error=record.error,
            ops=[Op.of(op, private=op.id in private, listing=not definition) for op in record.ops],
            not_acted_on=record.not_acted_on,
            definition=redacted(record.definition) if definition else None,
        )


@body
class JobList:
    """Jobs, newest first, without their definitions."""

    jobs: list[Job]

    @classmethod
    def of(cls, records: list[JobRecord]) -> JobList:
        return cls(jobs=[Job.of(record, definition=False) for record in records])


def private_ops(definition: Any) -> set[str]:
    """The ids of the ops that ask for `private: true`, read from the definition as
    submitted (a record keeps nothing else of it)."""
    ops = definition.get("ops") if isinstance(definition, dict) else None
    return {
        op["id"]
        for op in ops or []
        if isinstance(op, dict)
        and isinstance(op.get("args"), dict)
        and op["args"].get("private") is True
        and isinstance(op.get("id"), str)
    }


def _span(start: float | None, end: float | None) -> float | None:
    return round(end - start, 3) if start is not None and end is not None else None
