"""Preparing an op: its image and every resource from the store, all at once, each a lease
that keeps its entry from eviction while the op holds it (`acquire`); then what its container
needs made or found out before its spec can be written (`set_up`): a copy-on-write layer (an
overlay volume over the view, its folders in the op's scratch) for each `allowWrite`
resource, whether it gets a GPU (`docker.gpu`, the engine asked), the Hub endpoint's address,
and the job's network. The spec itself is then a pure function of these (`container`).

If one lease fails, the others are cancelled (`all_or_nothing`); the leases that did arrive
are held all the same (`held`), so that the op's clean-up releases them. The preparation
changes no record: the op's run records what it returns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.images import Credentials
from ..errors import JobError
from ..logs import get_logger
from ..resources import S3Resource
from ..store import Lease
from ..util.aiotasks import all_or_nothing
from .container import ContainerInputs
from .context import OpContext
from .models import ImageUse, ResourceUse
from .names import op_key, volume_name
from .spec import RunOp, mount_target

log = get_logger(__name__)

GPU_SKIPPED = "gpu: true, but docker.gpu = none: running without a GPU"


@dataclass(frozen=True)
class Held:
    """What the preparation holds, as the op's record keeps it."""

    image: ImageUse | None
    resources: list[ResourceUse]
    lease_ids: list[int]


@dataclass(frozen=True)
class SetUp:
    """What the container is given (`inputs`) and what the op runs without (`warnings`)."""

    inputs: ContainerInputs
    warnings: list[str]


@dataclass
class Preparation:
    """One op's preparation and what it holds."""

    ctx: OpContext
    holder: str
    """Who holds the leases, as the store records it (`job:<id>/op:<id>`)."""
    leases: dict[int, Lease] = field(default_factory=dict)
    """Resource leases by the resource's index in the op (they arrive in any order)."""
    image_lease: Lease | None = None
    private_image: bool = False
    """Pulled with the job's credentials: removed when the op ends."""
    writable_layers: list[str] = field(default_factory=list)
    """The overlay volumes made for the op, also when setting up failed after one was made."""
    _image: ImageUse | None = field(default=None, init=False)
    _uses: list[ResourceUse] = field(default_factory=list, init=False)

    def resource_leases(self) -> list[Lease]:
        """The resources' leases in the order of the op's resources."""
        return [self.leases[i] for i in sorted(self.leases)]

    def held(self) -> Held:
        lease_ids = [lease.lease_id for lease in self.resource_leases()]
        if self.image_lease is not None:
            lease_ids.append(self.image_lease.lease_id)
        return Held(self._image, self._uses, lease_ids)

    async def acquire(self, op: RunOp) -> None:
        """Every lease the op needs, or none kept waiting: `held` says what arrived."""
        auth = op.args.authentication.docker if op.args.authentication else None
        credentials = Credentials(auth.username, auth.password, auth.server) if auth else None
        self.private_image = credentials is not None
        resources = op.args.resources or []
        self._uses = [
            ResourceUse(source=None, target=mount_target(r), type=r.type) for r in resources
        ]
        fetches = [self._resource(op, i, self._uses[i]) for i in range(len(resources))]
        await all_or_nothing([self._acquire_image(op, credentials), *fetches])

    async def _acquire_image(self, op: RunOp, credentials: Credentials | None) -> None:
        images = self.ctx.parts.images
        lease = self.image_lease = await images.acquire(op.args.image, credentials, self.holder)
        self._image = ImageUse(
            ref=op.args.image,
            entry_id=lease.entry.id,
            hit=lease.hit,
            pulled=bool(lease.entry.details.get("pulled_by_daemon")) and not lease.hit,
        )

    async def _resource(self, op: RunOp, index: int, use: ResourceUse) -> None:
        resources = op.args.resources or []
        lease = await self.ctx.parts.cache.acquire(resources[index], self.holder)
        self.leases[index] = lease
        use.source, use.entry_id, use.hit = lease.entry.source, lease.entry.id, lease.hit
        use.bytes_fetched = 0 if lease.hit else lease.entry.size_bytes
        use.path = str(lease.view) if lease.view else None

    # -- what the container needs -------------------------------------------------------------

    async def set_up(self, op: RunOp) -> SetUp:
        """Make and find out what the op's container needs, once its leases are held: its
        writable layers, the Hub endpoint's address, its GPU, the job's network."""
        ctx = self.ctx
        store = ctx.parts.cache.store
        views = [str(store.engine_view_path(lease.entry.id)) for lease in self.resource_leases()]
        layers: dict[int, str] = {}
        for index, resource in enumerate(op.args.resources or []):
            if isinstance(resource, S3Resource) and resource.allowWrite:
                layers[index] = await self._writable_layer(op.id, index, Path(views[index]))
        hub = None
        if ctx.parts.hub is not None and "HF_ENDPOINT" not in (op.args.env or {}):
            hub = await ctx.parts.hub()
        warnings: list[str] = []
        gpu = await self._gpu(op, warnings)
        inputs = ContainerInputs(
            job_id=ctx.job_id,
            views=views,
            layers=layers,
            gpu=gpu,
            hub=hub,
            network=await ctx.network(),
        )
        return SetUp(inputs, warnings)

    async def _gpu(self, op: RunOp, warnings: list[str]) -> bool:
        """Whether the container gets the GPUs (`docker.gpu`; `auto` asks the engine)."""
        if not op.args.gpu:
            return False
        policy = self.ctx.parts.gpu
        if policy == "all":
            return True
        if policy == "none":
            log.warning("op.gpu_skipped", job_id=self.ctx.job_id, op=op.id)
            warnings.append(GPU_SKIPPED)
            return False
        status = await self.ctx.parts.engine.status()
        if status.has_gpu:
            return True
        raise JobError(
            f"op {op.id} asks for a GPU (gpu: true) but the Docker engine at {status.host} has "
            "no NVIDIA runtime or CDI GPUs (docker.gpu = auto); install the NVIDIA container "
            "toolkit, or set docker.gpu = none to run such ops without a GPU"
        )

    async def _writable_layer(self, op_id: str, index: int, lower: Path) -> str:
        """A copy-on-write layer over a view (an overlay volume): the job writes, the store
        does not."""
        ctx = self.ctx
        key = op_key(op_id)
        scratch = ctx.parts.cache.store.op_scratch(ctx.job_id, key)
        layer = str(index)
        for part in ("upper", "work"):
            folder = scratch.local / layer / part
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        engine = scratch.engine / layer
        name = volume_name(ctx.job_id, f"{key}-rw{index}")
        options = f"lowerdir={lower},upperdir={engine / 'upper'},workdir={engine / 'work'}"
        await ctx.parts.containers.create_volume(
            name, ctx.job_id, {"type": "overlay", "device": "overlay", "o": options}
        )
        self.writable_layers.append(name)
        return name
