"""The site store: a second level behind this node's store, shared by the nodes of one site.

    Site.request(resource) → a Fetch (request, resolver): the source's own, wrapped
        (resolver.py) so a miss here is first a look in the site store; requests fetched
        with credentials pass through untouched unless `site.share_private`
    Site.wrap(request, resolver, private=..., announced=...) → the same for a request that is
        not a resource (a file of the Hub endpoint), which says itself whether it is private
        and what upstream announced the file is (a site manifest must agree with it)
    a fetch through a site resolver ends (the store's `on_fetched` hook, once per fetch)
                             → ready: the uploader owes the site store what it lacks
                               (uploader.py); not ready: the herd claim is released, or the
                               site manifest it came from is distrusted
    status(), sweep()        → what it saved and whether it answers; `gc --site`

The store stays the only owner of the local index: the site only answers its resolver's
questions (what is this request now, give me this file), hears from the store how each fetch
ended, and reads ready entries' blobs through the store (`Store.open_blob`) to upload them.
Who does what:

    layout.py     keys and the manifest format        bucket.py    the S3 calls (as sources/s3)
    manifests.py  finding and writing manifests       herd.py      one fetch per site
    reading.py    verified reads into the store       resolver.py  the wrapped resolver
    pushing.py    one blob up, resumable              uploader.py  the background worker
    journal.py    what is owed, across restarts       sweep.py     gc --site
    health.py     up or down, counters
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..errors import UpstreamError
from ..logs import get_logger
from ..resources import HFResource
from ..settings import DownloadSettings, SiteSettings
from ..sources import Resource, Sources
from ..sources.identity import credential_of
from ..store import Entry, EntryRequest, Fetch, FetchEnded, Manifest, Resolver, Store
from ..util.aiotasks import TaskSet
from ..util.clock import Clock
from .bucket import SiteBucket
from .health import SiteCounters, SiteHealth
from .herd import Herd, Settled
from .journal import Journal, Upload
from .layout import Layout
from .manifests import Manifests
from .pushing import BlobPusher
from .reading import BlobReader
from .resolver import PinnedResolver, SiteResolver
from .sweep import SiteSweep, SiteSweeper
from .uploader import Uploader

log = get_logger(__name__)

JOURNAL = "site-uploads.sqlite"
SETTLING_AT_CLOSE = 5.0
"""How long closing waits for the entries being settled (a line in the journal, or a claim
released) before it cuts them."""


def _unpinned(version: str) -> Resolver | None:
    """For a request that names its version itself (the Hub endpoint's file of a commit): the
    source's own resolver is the one at the manifest's version."""
    return None


@dataclass(frozen=True)
class SiteReport:
    """What the site store saved since start, and whether it answers."""

    store: str
    up: bool | None
    last_error: str | None
    last_error_at: float | None
    last_ok_at: float | None
    share_private: bool
    counters: SiteCounters
    uploads_pending: int


class Site:
    def __init__(
        self,
        settings: SiteSettings,
        download: DownloadSettings,
        store: Store,
        sources: Sources,
        clock: Clock,
    ) -> None:
        """The journal lives in the store's folder, and the store's ttl is the site's: both
        are read from the store this site store is behind, so they cannot disagree."""
        self.settings = settings
        self.store = store
        self.sources = sources
        self.clock = clock
        self.bucket = SiteBucket(settings, download, clock)
        self.layout = Layout(self.bucket.prefix)
        self.counters = SiteCounters()
        self.health = SiteHealth(clock)
        self.journal = Journal(store.settings.path / JOURNAL)
        self.manifests = Manifests(self.bucket, self.layout, store.settings.ttl)
        self.reader = BlobReader(self.bucket, self.layout, self.counters)
        self.sweeper = SiteSweeper(self.bucket, self.layout, store.settings.ttl, clock)
        self.herd: Herd
        self.uploader: Uploader
        self._tasks = TaskSet("site")
        self._closing = False
        self._resolving: dict[str, SiteResolver] = {}
        """The site resolver of each fetch in flight, by request key (one fetch per request)."""

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: SiteSettings,
        download: DownloadSettings,
        store: Store,
        sources: Sources,
        clock: Clock,
    ) -> AsyncIterator[Site]:
        site = cls(settings, download, store, sources, clock)
        await site.start()
        try:
            yield site
        finally:
            await site.close()

    async def start(self) -> None:
        await self.bucket.start()
        await self.journal.open(self.clock.now())
        self.herd = Herd(
            self.bucket,
            self.layout,
            self.manifests,
            self.counters,
            self.health,
            self.clock,
            node=self.journal.node,
            wait=self.settings.herd_wait,
        )
        pusher = BlobPusher(
            self.bucket,
            self.layout,
            self.journal,
            self.counters,
            self.clock,
            self.settings.upload_concurrency,
            self.store.open_blob,
        )
        self.uploader = Uploader(
            self.store,
            self.journal,
            self.manifests,
            self.herd,
            pusher,
            self.counters,
            self.health,
            self.clock,
        )
        self.uploader.start()
        self.store.on_fetched(self._fetched)
        log.info("site.started", store=self.bucket.url, node=self.journal.node)

    async def close(self) -> None:
        """Stop; what was owed is in the journal for the next start. The entries being settled
        finish first (bounded): a fetch that ended just before shutdown (or was cut by it: the
        daemon cuts fetches before it closes the site) is owed, or its claim released, rather
        than forgotten: cancelled before its line reached the journal, a ready entry would
        never be uploaded by this node."""
        self._closing = True  # a fetch ending from now on settles nothing
        await self._tasks.close(grace=SETTLING_AT_CLOSE)
        await self.uploader.close()
        await self.herd.close()
        await self.bucket.close()
        await self.journal.close()

    # -- the read path ----------------------------------------------------------------------

    def request(self, resource: Resource) -> Fetch[Resolver]:
        """The source's request and resolver, with the site store in front when it may be."""
        fetch = self.sources.request(resource)

        def pinned(version: str) -> Resolver | None:
            if isinstance(resource, HFResource) and resource.revision != version:
                at = resource.model_copy(update={"revision": version})
                return self.sources.request(at).resolver
            return None

        private = credential_of(fetch.request.key) is not None
        wrapped = self.wrap(fetch.request, fetch.resolver, private=private, pinned=pinned)
        return Fetch(fetch.request, wrapped)

    def wrap(
        self,
        request: EntryRequest,
        resolver: Resolver,
        *,
        private: bool,
        pinned: PinnedResolver = _unpinned,
        announced: Manifest | None = None,
    ) -> Resolver:
        """`resolver` with the site store in front, unless what it fetches is `private` and
        `site.share_private` is off: then it neither reads from nor writes to the site store.

        A resource is private when it is fetched with credentials (its identity names them);
        a request that is keyed without them (the Hub endpoint's: access is checked per
        request) says so itself, from what upstream says of the repo. `announced` is what
        upstream said the entry is, where that took no call (the Hub endpoint's listing): a
        manifest of the site store that disagrees with it is not used."""
        if private and not self.settings.share_private:
            return resolver
        return SiteResolver(self, request, resolver, pinned, announced)

    async def settle(self, request: EntryRequest) -> Settled:
        """How a miss goes on (herd.py); the site store failing means upstream, alone."""
        if not self.health.usable():
            self.counters.manifest_misses += 1
            return Settled()
        try:
            settled = await self.herd.settle(request.request_key, request.key)
        except (UpstreamError, TimeoutError) as exc:
            self.health.failed(exc, f"manifest lookup for {request.source}")
            self.counters.manifest_misses += 1
            return Settled()
        self.health.ok()
        if settled.manifest is not None:
            self.counters.manifest_hits += 1
        else:
            self.counters.manifest_misses += 1
        return settled

    # -- the write path ---------------------------------------------------------------------

    def resolving(self, resolver: SiteResolver) -> None:
        """The store fetches through `resolver` (its `resolve` was called): when that fetch
        ends, `_fetched` settles it."""
        self._resolving[resolver.request.request_key] = resolver

    def _fetched(self, ended: FetchEnded) -> None:
        """The store's hook: a fetch ended. Through a site resolver, owe the site what it
        lacks (or let go of the claim); a fetch that read nothing through the site (private
        without `site.share_private`, or no site resolver) is none of the site's business."""
        resolver = self._resolving.pop(ended.request.request_key, None)
        if resolver is None or self._closing:
            return  # closing: the journal and claims are left as they are: a claim goes stale
        entry = ended.entry
        if entry is not None and entry.id != resolver.entry_id:
            entry = None  # a site manifest named another entry than its version makes
        name = f"settled:{ended.request.request_key[:12]}"
        self._tasks.spawn(self._settled(resolver, entry), name)

    async def _settled(self, resolver: SiteResolver, entry: Entry | None) -> None:
        """`entry` is the fetch's entry, ready, or None when the fetch did not make it ready."""
        request, settled = resolver.request, resolver.settled
        from_site = settled.manifest is not None
        if from_site and not resolver.fell_back:
            if entry is None:
                # Every piece passed its check against the manifest, so the store failed the
                # entry: a digest upstream announced that the manifest cannot vouch for (a git
                # blob id), or the store itself (space, say). Either way the next miss asks
                # upstream, not this manifest again.
                resolver.distrust()
            return
        if entry is None:
            if settled.leading:
                await self.herd.release(request.request_key)
            return
        upload = Upload(
            entry.id,
            request.request_key,
            settled.leading,
            manifest=not from_site,
            repairs=frozenset(resolver.repairs),
        )
        await self.uploader.owe(upload)

    # -- operating --------------------------------------------------------------------------

    async def report(self) -> SiteReport:
        return SiteReport(
            store=self.bucket.url,
            up=self.health.up,
            last_error=self.health.last_error,
            last_error_at=self.health.last_error_at,
            last_ok_at=self.health.last_ok_at,
            share_private=self.settings.share_private,
            counters=self.counters,
            uploads_pending=await self.journal.pending(),
        )

    async def sweep(self) -> SiteSweep:
        return await self.sweeper.sweep()
