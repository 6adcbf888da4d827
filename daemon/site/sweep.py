"""`nosana-cache gc --site`: the site store's expiry, for stores without lifecycle rules.

    manifests past their ttl (from their entry's first download)      → deleted
    blobs no fresh manifest names, not written within the last ttl    → deleted
    claims whose heartbeat stopped an hour ago or more                → deleted
    multipart uploads begun more than a ttl ago and never finished    → aborted

A blob is spared for a ttl after it was written because a node uploads an entry's blobs before
its manifest: a sweep between the two must not take them. Run it from one node (a timer);
two sweeps at once do no harm, only twice the listing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import (
    UpstreamError,
    UpstreamIntegrityError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from ..logs import get_logger
from ..util.clock import Clock
from .bucket import SiteBucket
from .layout import Layout, SiteManifest

log = get_logger(__name__)

CLAIM_AGE = 3600.0
"""A claim not rewritten for this long (its heartbeat is every few seconds) is dead."""


@dataclass(frozen=True)
class SiteSweep:
    manifests_removed: int
    blobs_removed: int
    bytes_freed: int
    claims_removed: int
    uploads_aborted: int


class SiteSweeper:
    def __init__(self, bucket: SiteBucket, layout: Layout, ttl: float, clock: Clock) -> None:
        self.bucket = bucket
        self.layout = layout
        self.ttl = ttl
        self.clock = clock

    async def sweep(self) -> SiteSweep:
        now = self.clock.now()
        named, stale = await self._manifests(now)
        await self.bucket.delete(stale)
        orphans = [
            blob
            for blob in await self.bucket.listing(self.layout.blobs)
            if self.layout.blob_digest(blob.key) not in named
            and (blob.last_modified or now) <= now - self.ttl
        ]
        await self.bucket.delete([blob.key for blob in orphans])
        claims = [
            claim.key
            for claim in await self.bucket.listing(self.layout.markers)
            if (claim.last_modified or now) <= now - CLAIM_AGE
        ]
        await self.bucket.delete(claims)
        aborted = await self._abort_old_uploads(now)
        report = SiteSweep(
            manifests_removed=len(stale),
            blobs_removed=len(orphans),
            bytes_freed=sum(blob.size for blob in orphans),
            claims_removed=len(claims),
            uploads_aborted=aborted,
        )
        log.info("site.swept", **report.__dict__)
        return report

    async def _abort_old_uploads(self, now: float) -> int:
        """Abort multipart uploads begun more than a ttl ago (left by nodes that died)."""
        try:
            uploads = await self.bucket.unfinished_uploads(self.layout.blobs)
        except UpstreamUnavailable:
            raise
        except UpstreamError as exc:  # s3rver, for one, cannot list them (501)
            log.warning("site.uploads_not_listed", error=exc.message)
            return 0
        aborted = 0
        for upload in uploads:
            if (upload.initiated or now) <= now - self.ttl:
                await self.bucket.abort_upload(upload.key, upload.upload_id)
                aborted += 1
        return aborted

    async def _manifests(self, now: float) -> tuple[set[str], list[str]]:
        """The blobs fresh manifests name, and the keys of the manifests to delete."""
        named: set[str] = set()
        stale: list[str] = []
        for item in await self.bucket.listing(self.layout.manifests):
            try:
                data = await self.bucket.get(item.key)
                manifest = SiteManifest.from_json(data, identity=None, where=item.key)
            except UpstreamNotFound:
                continue
            except UpstreamIntegrityError as exc:
                log.warning("site.manifest_removed", key=item.key, error=exc.message)
                stale.append(item.key)
                continue
            if manifest.fresh(now, self.ttl):
                named.update(f.sha256 for f in manifest.files)
            else:
                stale.append(item.key)
        return named, stale
