"""A source's resolver with the site store in front of it: the store asks it as any other.

    resolve()  a fresh manifest in the site store (another node's, or one it just fetched in
               a herd) is the resolution: no upstream call. Else upstream resolves, as without
               a site store (this node may have claimed the fetch for the site: see herd.py).
               Where upstream's word on the entry is known without asking (`announced`: the
               Hub endpoint's listing of a commit), a manifest that disagrees with it is passed
               over, and the store checks upstream's digests as well as the manifest's
    fetch()    a file of a site manifest comes from the site store, each piece verified before
               the store sees it; whatever the site store cannot give (down, slow, missing,
               damaged) comes from upstream: resolved then, once, at the manifest's version
               where the source can pin one (an HF commit)
    close()    closes the clients it used; what became of the entry the store tells the site
               itself when the fetch ends (`Store.on_fetched`, see site.py), which then owes
               the site store what it lacks (uploader.py)

Requests fetched with credentials, and files of the Hub endpoint's private and gated repos,
are passed straight to upstream unless `site.share_private` (see `Site.wrap`): they neither
read nor write the site store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from ..errors import UpstreamError, UpstreamIntegrityError, UpstreamNotFound
from ..logs import get_logger
from ..store import BlobSink, EntryRequest, Expected, FileSpec, Manifest, Resolver, entry_id_for
from .health import SiteCounters, SiteHealth
from .herd import Settled
from .layout import SiteFile, SiteManifest
from .manifests import Manifests
from .reading import BlobReader

log = get_logger(__name__)

PinnedResolver = Callable[[str], Resolver | None]
"""A resolver of the same resource pinned at a version (an HF commit), or None."""


class SiteParts(Protocol):
    """What a resolver uses of the site (`Site`, which makes resolvers)."""

    health: SiteHealth
    counters: SiteCounters
    manifests: Manifests
    reader: BlobReader

    def resolving(self, resolver: SiteResolver) -> None: ...

    async def settle(self, request: EntryRequest) -> Settled: ...


class SiteResolver:
    def __init__(
        self,
        site: SiteParts,
        request: EntryRequest,
        upstream: Resolver,
        pinned: PinnedResolver,
        announced: Manifest | None = None,
    ) -> None:
        self.site = site
        self.request = request
        self.upstream = upstream
        self.pinned = pinned
        self.announced = announced
        """What upstream said the entry is, when that took no call (a file of the Hub endpoint:
        its commit's listing): a site manifest is another node's word, checked against it."""
        self.settled = Settled()
        self.entry_id: str | None = None
        self.fell_back = False
        """Some file of a site manifest came from upstream: the site store is to be checked
        (and given what it lacks) once the entry is ready."""
        self.repairs: set[str] = set()
        """Blobs the site store holds damaged: to overwrite once the entry is ready."""
        self._files: dict[str, SiteFile] = {}
        self._fallback: Resolver | None = None
        self._fallback_files: dict[str, FileSpec] | None = None
        self._fallback_lock = asyncio.Lock()

    async def resolve(self) -> Manifest:
        self.site.resolving(self)  # the store fetches through this resolver: see Site._fetched
        self.settled = await self.site.settle(self.request)
        found = self.settled.manifest
        files = None if found is None else self._agreed(found)
        if found is None or files is None:
            if found is not None:
                self.settled = Settled()  # a manifest passed over: fetched here, unclaimed
            manifest = await self.upstream.resolve()
            self.entry_id = entry_id_for(self.request.request_key, manifest.version)
            return manifest
        self.entry_id = found.entry_id
        self._files = {f.path: f for f in found.files}
        log.info("site.manifest_used", source=self.request.source, written_by=found.written_by)
        details = found.details | {
            "site_store": {
                "from_node": found.written_by,
                "first_downloaded_at": found.first_downloaded_at,
            }
        }
        return Manifest(version=found.version, files=files, details=details)

    def _agreed(self, found: SiteManifest) -> tuple[FileSpec, ...] | None:
        """The manifest's files, each also bound to every digest upstream announced for it
        (a git blob id is checked by the store, a manifest having only sha256s); None, and the
        manifest distrusted, when it names another version, other files, another size or
        another sha256 than upstream announced: its pieces would pass their checks, and the
        store would keep a file that is not upstream's."""
        if self.announced is None:
            return tuple(_spec(f) for f in found.files)
        said = {f.path: f for f in self.announced.files}
        specs = [_bound(file, said.get(file.path)) for file in found.files]
        agreed = [spec for spec in specs if spec is not None]
        if found.version == self.announced.version and len(agreed) == len(said) == len(specs):
            return tuple(agreed)
        log.warning(
            "site.manifest_disagrees",
            source=self.request.source,
            written_by=found.written_by,
            action="fetching it upstream",
        )
        self.site.manifests.distrust(self.request.request_key, found.entry_id)
        return None

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        site_file = self._files.get(file.path)
        if site_file is None:
            await self.upstream.fetch(file, sink)
            return
        if self.site.health.usable():
            try:
                await self.site.reader.read(site_file, sink)
                self.site.health.ok()
                return
            except UpstreamNotFound:
                log.warning("site.blob_missing", file=file.path, sha256=site_file.sha256)
            except UpstreamIntegrityError as exc:
                log.warning("site.blob_damaged", error=exc.message, action="fetching it upstream")
                self.site.counters.damaged += 1
                self.repairs.add(site_file.sha256)
            except (UpstreamError, TimeoutError) as exc:
                self.site.health.failed(exc, f"read of {file.path}")
        self.fell_back = True
        self.site.counters.fallbacks += 1
        await self._from_upstream(site_file, sink)

    async def _from_upstream(self, site_file: SiteFile, sink: BlobSink) -> None:
        """What the site store could not give, from upstream at the manifest's version."""
        assert self.settled.manifest is not None
        spec = (await self._upstream_files()).get(site_file.path)
        if (
            spec is None
            or spec.size != site_file.size
            or (spec.expected.sha256 not in (None, site_file.sha256))
        ):
            self.distrust()
            raise UpstreamError(
                f"{self.request.source}: the site store could not give {site_file.path} and "
                f"upstream no longer serves it as of {self.settled.manifest.version}"
            )
        if spec.data is not None:
            for start, end in sink.missing():
                await sink.write(start, spec.data[start:end])
            return
        assert self._fallback is not None
        await self._fallback.fetch(spec, sink)

    async def _upstream_files(self) -> dict[str, FileSpec]:
        async with self._fallback_lock:
            if self._fallback_files is None:
                assert self.settled.manifest is not None
                version = self.settled.manifest.version
                self._fallback = self.pinned(version) or self.upstream
                manifest = await self._fallback.resolve()
                if manifest.version != version:
                    log.info("site.upstream_moved", source=self.request.source, version=version)
                self._fallback_files = {f.path: f for f in manifest.files}
            return self._fallback_files

    def distrust(self) -> None:
        """Pass this manifest over from now on: the next miss resolves upstream afresh."""
        if self.entry_id is not None:
            self.site.manifests.distrust(self.request.request_key, self.entry_id)

    async def close(self) -> None:
        await self.upstream.close()
        if self._fallback is not None and self._fallback is not self.upstream:
            await self._fallback.close()


def _bound(file: SiteFile, announced: FileSpec | None) -> FileSpec | None:
    """`file` bound to what upstream announced for it too, or None if they disagree."""
    if announced is None or file.size != announced.size:
        return None
    if announced.expected.sha256 not in (None, file.sha256):
        return None
    expected = replace(announced.expected, sha256=file.sha256)
    return replace(_spec(file), expected=expected, alias=announced.alias)


def _spec(file: SiteFile) -> FileSpec:
    return FileSpec(
        path=file.path,
        expected=Expected(size=file.size, sha256=file.sha256),
        executable=file.executable,
    )
