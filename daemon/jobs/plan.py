"""A dry run: what running a job would take, found without changing anything.

Per op: its image and each resource, whether the store would serve it now (and until when),
the bytes a fetch would take where the store knows them, and what would be mounted where.
Nothing is created, leased, counted as a hit, fetched or pulled; nothing beyond the host is
asked (a dry run must be quick, work offline, and cost no one's rate limit): for a resource
the store has never seen, the bytes are unknown. The engine is asked whether it has each
image (a local look), and the answer is None when it does not answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from pydantic import SecretStr

from ..engine.images import Credentials
from ..errors import NosanaCacheError
from ..resources import HFResource, OllamaResource, S3Resource
from ..store import Lookup
from ..util.literals import known_at_run_time
from .context import Components
from .ignored import job_not_acted_on, op_not_acted_on
from .spec import JobDefinition, RunOp, VolumeOp, mount_target, needs_network


@dataclass(frozen=True)
class Cached:
    """One image or resource: what the store (and the engine) know of it now."""

    source: str
    cached: bool
    entry_id: str | None = None
    expires_at: float | None = None
    """When a cached entry stops being served (None: pinned, or not cached)."""
    bytes_to_fetch: int | None = None
    """0 when cached; else what the store knows of an earlier version; None: unknown."""
    note: str | None = None
    """Why the rest is unknown (a value known only when the op starts, an unusable URL)."""


@dataclass(frozen=True)
class ImagePlan(Cached):
    ref: str = ""
    in_engine: bool | None = None
    """Whether the engine has it (None: the engine did not answer)."""
    private: bool = False
    """Pulled with the op's credentials, and removed when the op ends."""


@dataclass(frozen=True)
class ResourcePlan(Cached):
    type: str = ""
    target: str = ""


@dataclass(frozen=True)
class MountPlan:
    target: str
    kind: str
    """`view` (read-only), `writable-layer` (copy-on-write over a view) or `volume`."""
    source: str | None
    """A view's path on the engine's host once known (a cached entry's), or a volume's name."""
    read_only: bool


@dataclass(frozen=True)
class OpPlan:
    id: str
    type: str
    group: str | None
    depends_on: list[str]
    image: ImagePlan | None
    resources: list[ResourcePlan]
    mounts: list[MountPlan]
    ports: list[int]
    not_acted_on: list[str]


@dataclass(frozen=True)
class JobPlan:
    ops: list[OpPlan]
    network: bool
    """Whether the job would get a network of its own (more than one container, aliases)."""
    not_acted_on: list[str] = field(default_factory=list)


async def plan_job(parts: Components, job: JobDefinition) -> JobPlan:
    looks = _Looks(parts)
    ops = [await _op(looks, op) for op in job.ops]
    return JobPlan(ops=ops, network=needs_network(job), not_acted_on=job_not_acted_on(job))


class _Looks:
    """Each image and resource looked up once per plan, however many ops name it: the engine
    and the store are asked in proportion to what the job needs, not to its ops."""

    def __init__(self, parts: Components) -> None:
        self.parts = parts
        self._images: dict[str, ImagePlan] = {}
        self._resources: dict[str, ResourcePlan] = {}

    async def image(self, op: RunOp) -> ImagePlan:
        key = op.args.model_dump_json(include={"image", "authentication"})
        if key not in self._images:
            self._images[key] = await _image(self.parts, op)
        return self._images[key]

    async def resource(self, resource: HFResource | S3Resource | OllamaResource) -> ResourcePlan:
        key = json.dumps(resource.model_dump(), default=_revealed, sort_keys=True)
        if key not in self._resources:
            self._resources[key] = await _resource(self.parts, resource)
        return self._resources[key]


def _revealed(value: object) -> str:
    """A secret as itself, for a key that tells two tokens apart (never shown or stored)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


async def _op(looks: _Looks, op: RunOp | VolumeOp) -> OpPlan:
    execution = op.execution
    plan = OpPlan(
        id=op.id,
        type=op.type,
        group=execution.group if execution else None,
        depends_on=list(execution.depends_on or []) if execution else [],
        image=None,
        resources=[],
        mounts=[],
        ports=[],
        not_acted_on=op_not_acted_on(op),
    )
    if not isinstance(op, RunOp):
        return plan
    resources = [await looks.resource(r) for r in op.args.resources or []]
    writable = [isinstance(r, S3Resource) and r.allowWrite for r in op.args.resources or []]
    mounts = [_mount(looks.parts, r, w) for r, w in zip(resources, writable, strict=True)]
    mounts += [
        MountPlan(target=v.dest, kind="volume", source=v.name, read_only=False)
        for v in op.args.volumes or []
    ]
    return replace(
        plan,
        image=await looks.image(op),
        resources=resources,
        mounts=mounts,
        ports=[p.port for p in op.args.ports()],
    )


async def _image(parts: Components, op: RunOp) -> ImagePlan:
    ref = op.args.image
    auth = op.args.authentication.docker if op.args.authentication else None
    credentials = Credentials(auth.username, auth.password, auth.server) if auth else None
    unknown = ImagePlan(source=ref, cached=False, ref=ref, private=credentials is not None)
    if known_at_run_time(ref):
        return replace(unknown, note="known when the op starts")
    try:
        known = await parts.images.look_up(ref, credentials)
        request, lookup, present = known.request, known.lookup, known.in_engine
    except NosanaCacheError as exc:
        return replace(unknown, note=exc.message)
    cached = lookup.cached and present is not False
    return replace(
        unknown,
        source=request.source,
        cached=cached,
        entry_id=_entry_id(lookup),
        expires_at=_expires_at(parts, lookup, cached),
        bytes_to_fetch=0 if present else lookup.bytes_to_fetch,
        in_engine=present,
    )


async def _resource(
    parts: Components, resource: HFResource | S3Resource | OllamaResource
) -> ResourcePlan:
    unknown = ResourcePlan(
        source="", cached=False, type=resource.type, target=mount_target(resource)
    )
    if known_at_run_time(resource.model_dump_json()):
        return replace(unknown, note="known when the op starts")
    try:
        known = await parts.cache.look_up(resource)
        request, lookup = known.request, known.lookup
    except NosanaCacheError as exc:
        return replace(unknown, note=exc.message)
    return replace(
        unknown,
        source=request.source,
        cached=lookup.cached,
        entry_id=_entry_id(lookup),
        expires_at=_expires_at(parts, lookup, lookup.cached),
        bytes_to_fetch=lookup.bytes_to_fetch,
    )


def _entry_id(lookup: Lookup) -> str | None:
    return lookup.entry.id if lookup.entry is not None else None


def _expires_at(parts: Components, lookup: Lookup, cached: bool) -> float | None:
    entry = lookup.entry
    if entry is None or not cached or entry.pinned:
        return None
    return parts.cache.store.expires_at(entry)


def _mount(parts: Components, plan: ResourcePlan, writable: bool) -> MountPlan:
    """A resource's mount: its view, once the entry that would serve it is known."""
    view = None
    if plan.cached and plan.entry_id is not None:
        view = str(parts.cache.store.engine_view_path(plan.entry_id))
    return MountPlan(
        target=plan.target.rstrip("/") or "/",
        kind="writable-layer" if writable else "view",
        source=view,
        read_only=not writable,
    )
