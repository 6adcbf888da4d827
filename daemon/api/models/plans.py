"""A dry run's answer (`POST /v1/jobs?dry_run=true`): what running the job would take, per op:
its image and each resource (cached or not, until when, bytes to fetch where known), what
would be mounted where, and what the daemon would not act on."""

from __future__ import annotations

from typing import Literal

from ...jobs import plan
from ...util.wire import Instant, body


@body
class ImagePlan:
    """The op's image: `cached` when the store has its entry and the engine the image."""

    ref: str
    source: str
    cached: bool
    in_engine: bool | None
    """Whether the engine has it now (None: the engine did not answer)."""
    private: bool
    """Pulled with the op's credentials, removed when the op ends."""
    entry_id: str | None
    expires_at: Instant
    bytes_to_fetch: int | None
    """0 when nothing is pulled; else the size the store knows, or None: unknown."""
    note: str | None

    @classmethod
    def of(cls, image: plan.ImagePlan) -> ImagePlan:
        return cls(
            ref=image.ref,
            source=image.source,
            cached=image.cached,
            in_engine=image.in_engine,
            private=image.private,
            entry_id=image.entry_id,
            expires_at=image.expires_at,
            bytes_to_fetch=image.bytes_to_fetch,
            note=image.note,
        )


@body
class ResourcePlan:
    """One resource: `cached` when an entry would serve it now. `bytes_to_fetch` is 0 then;
    else the bytes of an earlier entry of it that are not in the store (as the store knows
    it: upstream is not asked), or None when the store has never seen it."""

    type: str
    source: str
    target: str
    cached: bool
    entry_id: str | None
    expires_at: Instant
    """When the entry stops being served (None: pinned, or not cached)."""
    bytes_to_fetch: int | None
    note: str | None
    """Why the rest is unknown (a value known only when the op starts, an unusable URL)."""

    @classmethod
    def of(cls, resource: plan.ResourcePlan) -> ResourcePlan:
        return cls(
            type=resource.type,
            source=resource.source,
            target=resource.target,
            cached=resource.cached,
            entry_id=resource.entry_id,
            expires_at=resource.expires_at,
            bytes_to_fetch=resource.bytes_to_fetch,
            note=resource.note,
        )


@body
class MountPlan:
    """What would be mounted at `target`: a view (read-only; its path on the engine's host
    once the entry is known), a copy-on-write layer over one (`allowWrite`), or a volume."""

    target: str
    kind: Literal["view", "writable-layer", "volume"]
    source: str | None
    read_only: bool

    @classmethod
    def of(cls, mount: plan.MountPlan) -> MountPlan:
        return cls(
            target=mount.target,
            kind=mount.kind,  # type: ignore[arg-type]  # the plan's words
            source=mount.source,
            read_only=mount.read_only,
        )


@body
class OpPlan:
    id: str
    type: Literal["container/run", "container/create-volume"]
    group: str | None
    depends_on: list[str]
    image: ImagePlan | None
    resources: list[ResourcePlan]
    mounts: list[MountPlan]
    ports: list[int]
    not_acted_on: list[str]

    @classmethod
    def of(cls, op: plan.OpPlan) -> OpPlan:
        return cls(
            id=op.id,
            type=op.type,  # type: ignore[arg-type]  # the definition's type
            group=op.group,
            depends_on=op.depends_on,
            image=ImagePlan.of(op.image) if op.image else None,
            resources=[ResourcePlan.of(r) for r in op.resources],
            mounts=[MountPlan.of(m) for m in op.mounts],
            ports=op.ports,
            not_acted_on=op.not_acted_on,
        )


@body
class JobPlan:
    """The job is valid; this is what running it would take. Nothing was created, fetched
    or pulled. `bytes_to_fetch` adds what is known (`complete`: nothing is unknown)."""

    valid: Literal[True]
    ops: list[OpPlan]
    network: bool
    """The job would get a network of its own (more than one container, or aliases)."""
    bytes_to_fetch: int
    complete: bool
    not_acted_on: list[str]

    @classmethod
    def of(cls, job: plan.JobPlan) -> JobPlan:
        items = [i for op in job.ops for i in [op.image, *op.resources] if i is not None]
        return cls(
            valid=True,
            ops=[OpPlan.of(op) for op in job.ops],
            network=job.network,
            bytes_to_fetch=sum(i.bytes_to_fetch or 0 for i in items),
            complete=all(i.bytes_to_fetch is not None for i in items),
            not_acted_on=job.not_acted_on,
        )
