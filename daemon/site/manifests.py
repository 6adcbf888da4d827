"""Finding and writing entries' manifests in the site store.

A request's manifests share one folder (`manifests/<request key>/`): finding one is a listing
of that folder and a GET of its newest object, and it counts only if it is the same request
(its identity, byte for byte: credentials included) and still fresh, its ttl counted from the
entry's first download anywhere on the site. A manifest's key names that download, so an entry
downloaded again after its ttl is shared again under a key of its own. Writing is conditional
(`If-None-Match: *`): a manifest is never replaced, and of two nodes writing the same one, one
wins and both are fine.
"""

from __future__ import annotations

from ..errors import UpstreamIntegrityError, UpstreamNotFound
from ..logs import get_logger
from ..util.limits import SITE_MANIFEST_BYTES
from .bucket import SiteBucket
from .layout import Layout, SiteManifest

log = get_logger(__name__)

LOOKS = 3
"""Manifests of one request read, newest written first, before giving up on a fresh one (an
older version written late can be newer in the listing than the fresh one)."""


class Manifests:
    def __init__(self, bucket: SiteBucket, layout: Layout, ttl: float) -> None:
        self.bucket = bucket
        self.layout = layout
        self.ttl = ttl
        self.distrusted: set[str] = set()
        """Key prefixes of entries whose manifests this node found wrong (upstream no longer
        serves what they name), and keys of manifests it could not use (damaged, past a
        bound): passed over until the daemon restarts."""

    async def find(self, request_key: str, identity: str, now: float) -> SiteManifest | None:
        """The newest fresh manifest of the request, or None; raises when the site store does
        not answer (the caller falls back to upstream)."""
        folder = self.layout.manifest_folder(request_key)
        listed = await self.bucket.listing(folder)
        listed.sort(key=lambda o: o.last_modified or 0.0, reverse=True)
        candidates = [item for item in listed if not item.key.startswith(tuple(self.distrusted))]
        for item in candidates[:LOOKS]:
            try:
                too_large = SITE_MANIFEST_BYTES.over(item.size, f"{item.key}: the manifest")
                if too_large:  # not even read
                    raise UpstreamIntegrityError(too_large)
                data = await self.bucket.get(item.key)
                manifest = SiteManifest.from_json(data, identity=identity, where=item.key)
            except UpstreamNotFound:
                continue  # swept away since the listing
            except UpstreamIntegrityError as exc:
                log.warning(
                    "site.manifest_unusable",
                    key=item.key,
                    error=exc.message,
                    action="passed over until the daemon restarts",
                )
                self.distrusted.add(item.key)
                continue
            if manifest.fresh(now, self.ttl):
                return manifest
        return None

    async def write(self, request_key: str, manifest: SiteManifest) -> bool:
        """Write the manifest unless it is there already (False then)."""
        key = self.layout.manifest(request_key, manifest.entry_id, manifest.first_downloaded_at)
        return await self.bucket.put(key, manifest.to_json(), if_absent=True)

    def distrust(self, request_key: str, entry_id: str) -> None:
        self.distrusted.add(self.layout.entry_manifests(request_key, entry_id))
