"""The registry endpoint's work, behind its routes: tags, manifests and blobs out of the store.

    manifest(repo, tag)     the tag's entry (its digest, once per ttl) → the manifest's
    manifest(repo, digest)  the manifest's entry: a ready one is used however old (a digest
                            names bytes that never change), so a digest asks upstream nothing
    open_blob(repo, digest) a one-file entry read as it lands (store.open_file); its size is
                            the store's, else a manifest's this endpoint served, else a HEAD

While upstream cannot be asked, a tag resolves to the newest digest the store still has for it:
cached images keep pulling with the registry down.

With a site store (`site.store`), tags, manifests and blobs go through it as the Hub
endpoint's files do (`Site.wrap`): a miss here is first a look there, and what became ready
here is uploaded, so a site's second node pulls an image without asking upstream. A pull with
credentials neither reads nor writes the site store unless `site.share_private`. A manifest
is its digest: one from the site store is checked against it before it is served.

At start, `resume_unfinished` fetches again, in the background, the public blobs a killed or
stopped daemon left half-fetched: their bytes so far are kept (the store's download record),
only the rest is asked upstream, and an engine pulling meanwhile joins that one fetch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..errors import NosanaCacheError, StoreError, UpstreamIntegrityError, UpstreamUnavailable
from ..logs import get_logger
from ..site import Site
from ..sources.registry import (
    MANIFEST_FILE,
    TAG_FILE,
    RegistrySource,
    Repository,
    TagDocument,
)
from ..sources.registry_upstream import Credential
from ..store import (
    Entry,
    EntryDetails,
    EntryRequest,
    Fetch,
    FileFetch,
    FileStream,
    Manifest,
    Resolver,
    Store,
)
from ..util.aiotasks import TaskSet
from ..util.clock import Clock, SystemClock
from .names import is_digest
from .pulls import Pulls, Tally

log = get_logger(__name__)

READ_HOLDER = "registry:read"
"""The lease holder of what an engine is reading: a restarted daemon drops such leases."""
KNOWN_SIZES = 65536
"""Blob sizes remembered from the manifests served (so a blob miss asks upstream no HEAD)."""


@dataclass(frozen=True)
class ServedManifest:
    body: bytes
    media_type: str
    digest: str


class RegistryMirror:
    def __init__(
        self,
        store: Store,
        source: RegistrySource,
        site: Site | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.store = store
        self.source = source
        self.site = site
        """The site store (`site.store`), in front of upstream for pulls without credentials."""
        self.pulls = Pulls(clock=self.clock)
        self._sizes: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._background = TaskSet("registry")

    def resume_unfinished(self, entries: list[Entry]) -> int:
        """Restart, in the background, the blob fetches a previous run left unfinished."""
        resumed = 0
        for entry in entries:
            blob = self.source.resumed_blob(entry)
            if blob is None:
                continue
            self._background.spawn(self._resume(entry, blob), f"resume:{entry.id}")
            resumed += 1
        if resumed:
            log.info("registry.resuming", blobs=resumed)
        return resumed

    async def _resume(self, entry: Entry, blob: FileFetch[Resolver]) -> None:
        try:
            await self.store.wait_ready(blob.request, blob.resolver)
            log.info("fetch.resumed", entry_id=entry.id, source=entry.source)
        except NosanaCacheError as exc:
            log.warning("fetch.resume_failed", entry_id=entry.id, error=exc.message)

    async def close(self) -> None:
        await self._background.close()

    async def manifest(
        self,
        repo: Repository,
        reference: str,
        credential: Credential | None,
        tally: Tally | None = None,
    ) -> ServedManifest:
        digest = reference
        if not is_digest(reference):
            digest = (await self._tag(repo, reference, credential)).digest
        fetch = self.source.manifest(repo, digest, credential)
        resolver = self._through(fetch, credential, tally)
        data, details = await self._read(fetch.request, resolver, MANIFEST_FILE, any_age=True)
        if hashlib.sha256(data).hexdigest() != digest.removeprefix("sha256:"):
            # Upstream's bytes were checked as they came: these are a site manifest's.
            raise UpstreamIntegrityError(f"{repo}@{digest}: the stored manifest is not its digest")
        self._remember(data, credential)
        return ServedManifest(data, str(details.get("media_type", "")), digest)

    async def blob_size(self, repo: Repository, digest: str, credential: Credential | None) -> int:
        """A blob's size, from what is known here before asking upstream."""
        entry = await self.store.find(self.source.blob_request(digest, credential), stale=True)
        if entry is not None:
            return entry.size_bytes
        known = self._sizes.get((_fingerprint(credential), digest))
        if known is not None:
            return known
        upstream = self.source.upstream
        place = upstream.place(repo.registry, private=credential is not None)
        return await upstream.head_blob(place, repo.name, digest, credential)

    async def open_blob(
        self,
        repo: Repository,
        digest: str,
        credential: Credential | None,
        tally: Tally | None = None,
    ) -> FileStream:
        """The blob's bytes: a hit, or fetched once and read as they land. Close it."""
        size = await self.blob_size(repo, digest, credential)
        blob = self.source.blob(repo, digest, size, credential)
        announced = await blob.resolver.resolve()  # the digest and size: no upstream call
        resolver = self._through(blob, credential, tally, announced)
        return await self.store.open_file(blob.request, resolver, blob.spec, READ_HOLDER)

    def _through(
        self,
        fetch: Fetch[Resolver] | FileFetch[Resolver],
        credential: Credential | None,
        tally: Tally | None,
        announced: Manifest | None = None,
    ) -> Resolver:
        """The source's resolver, counted for the pull, behind the site store where it may
        be (a pull with credentials is private: see `Site.wrap`)."""
        upstream = fetch.resolver
        resolver = tally.counted(upstream, upstream=True) if tally is not None else upstream
        if self.site is None:
            return resolver
        private = credential is not None
        wrapped = self.site.wrap(fetch.request, resolver, private=private, announced=announced)
        if wrapped is resolver or tally is None:
            return wrapped
        return tally.counted(wrapped, upstream=False)

    async def _tag(self, repo: Repository, tag: str, credential: Credential | None) -> TagDocument:
        """The tag's digest; its document is the daemon's record of a HEAD, not image bytes:
        not counted in the pull's tally."""
        fetch = self.source.tag(repo, tag, credential)
        resolver = self._through(fetch, credential, None)
        try:
            data, _details = await self._read(fetch.request, resolver, TAG_FILE)
        except UpstreamUnavailable as exc:
            entry = await self.store.find(fetch.request, stale=True)
            stale = await self._file(entry, TAG_FILE) if entry is not None else None
            if stale is None:
                raise
            log.warning("registry.stale_tag", image=f"{repo}:{tag}", error=exc.message)
            data = stale
        return TagDocument.from_bytes(data)

    async def _read(
        self, wanted: EntryRequest, resolver: Resolver, path: str, *, any_age: bool = False
    ) -> tuple[bytes, EntryDetails]:
        """The entry's one file and details: from the store (with `any_age`, a ready entry
        however old), else fetched once."""
        if any_age:
            entry = await self.store.find(wanted, stale=True)
            data = await self._file(entry, path) if entry is not None else None
            if entry is not None and data is not None:
                return data, entry.details
        lease = await self.store.acquire(wanted, resolver, holder=READ_HOLDER)
        try:
            data = await self._file(lease.entry, path)
        finally:
            await self.store.release(lease)
        if data is None:
            raise StoreError(f"{wanted.source}: the entry has no {path}")
        return data, lease.entry.details

    async def _file(self, entry: Entry, path: str) -> bytes | None:
        view = self.store.view_path(entry)
        if view is None:
            return None
        try:
            return await asyncio.to_thread(Path(view, path).read_bytes)
        except OSError:
            return None  # swept meanwhile: fetched again

    def _remember(self, body: bytes, credential: Credential | None) -> None:
        """The sizes of the blobs a manifest names (an index names manifests: skipped)."""
        try:
            document = json.loads(body)
            descriptors = [document["config"], *document["layers"]]
        except (ValueError, KeyError, TypeError):
            return
        fingerprint = _fingerprint(credential)
        for descriptor in descriptors:
            if not isinstance(descriptor, dict):
                continue
            digest, size = descriptor.get("digest"), descriptor.get("size")
            if isinstance(digest, str) and isinstance(size, int) and size >= 0:
                self._sizes[(fingerprint, digest)] = size
                self._sizes.move_to_end((fingerprint, digest))
        while len(self._sizes) > KNOWN_SIZES:
            self._sizes.popitem(last=False)


def _fingerprint(credential: Credential | None) -> str:
    return credential.fingerprint if credential else ""
