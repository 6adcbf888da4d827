"""Preparing an op: its image and every resource from the store, all at once, each a lease
that keeps its entry from eviction while the op holds it.

If one fails, the others are cancelled (`all_or_nothing`); the leases that did arrive are
recorded all the same, so that the op's clean-up releases them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..aiotasks import all_or_nothing
from ..engine.images import Credentials
from ..store import Lease
from .context import OpContext
from .models import ImageUse, OpRecord, ResourceUse
from .spec import RunOp, mount_target
from .states import OpState


@dataclass
class Preparation:
    """One op's preparation and what it holds."""

    ctx: OpContext
    record: OpRecord
    holder: str
    """Who holds the leases, as the store records it (`job:<id>/op:<id>`)."""
    leases: dict[int, Lease] = field(default_factory=dict)
    """Resource leases by the resource's index in the op (they arrive in any order)."""
    image_lease: Lease | None = None
    private_image: bool = False
    """Pulled with the job's credentials: removed when the op ends."""

    def resource_leases(self) -> list[Lease]:
        """The resources' leases in the order of the op's resources."""
        return [self.leases[i] for i in sorted(self.leases)]

    async def run(self, op: RunOp) -> None:
        record = self.record
        record.state, record.prepare_started = OpState.PREPARING, time.time()
        await self.ctx.save()
        auth = op.args.authentication.docker if op.args.authentication else None
        credentials = Credentials(auth.username, auth.password, auth.server) if auth else None
        self.private_image = credentials is not None
        resources = op.args.resources or []
        uses = [ResourceUse(source=None, target=mount_target(r), type=r.type) for r in resources]
        fetches = [self._resource(op, i, uses[i]) for i in range(len(resources))]
        try:
            await all_or_nothing([self._image(op, credentials), *fetches])
        finally:
            lease_ids = [lease.lease_id for lease in self.resource_leases()]
            if self.image_lease is not None:
                lease_ids.append(self.image_lease.lease_id)
            record.resources, record.lease_ids = uses, lease_ids
            await self.ctx.save()
        record.prepare_ended = time.time()
        await self.ctx.save()

    async def _image(self, op: RunOp, credentials: Credentials | None) -> None:
        images = self.ctx.parts.images
        lease = self.image_lease = await images.acquire(op.args.image, credentials, self.holder)
        self.record.image = ImageUse(
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
