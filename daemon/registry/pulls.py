"""What each recent image pull through the endpoint took, and from where: `/v1/status`'s
`registry.pulls`, `/metrics`' bytes by source, `nosana-cache status`'s line.

An engine pulls an image as a run of requests on one repository: its manifest by tag (or
digest), a platform's manifest by digest when that was an index, then the config and layer
blobs by digest. A manifest asked by tag starts a pull; a manifest or blob asked by digest
belongs to the newest pull of the same repository (and credential) whose manifests named it,
else to the newest pull of that repository, else it starts one of its own (`repo@digest`).

Each request is counted by a `Tally`: what its fetch took from upstream and from the site
store (resolvers wrapped here count the bytes they write into the store, `counted()`), and
what was sent to the engine. Bytes sent that this request's fetch did not bring were already
in the store (or brought by another pull's fetch of the same blob): they count as `store`.
Only the newest `RECENT` pulls are kept; the totals by source count everything since start.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from ..sources.registry import Repository
from ..store import BlobSink, FileSpec, Manifest, Resolver
from ..util.clock import Clock, SystemClock

RECENT = 50
"""Pulls kept for status (the oldest is dropped first)."""
SOURCES = ("upstream", "site", "store")


@dataclass
class Pull:
    """One image pulled through the endpoint (a tag, or a digest), as status shows it."""

    image: str  # registry/name:tag or registry/name@digest
    repository: str
    reference: str
    private: bool
    started_at: float  # wall clock
    digest: str | None = None
    """The manifest digest the reference resolved to (a tag's: the index, if it is one)."""
    last_at: float = 0.0
    blobs: int = 0
    reading: int = 0
    """Requests of this pull still being answered."""
    bytes_sent: int = 0
    bytes_from: Counter[str] = field(default_factory=Counter)
    named: set[str] = field(default_factory=set, repr=False)
    """Digests the pull's manifests named (children of an index, config and layers)."""
    _started: float = field(default=0.0, repr=False)
    """On the clock's `monotonic()`, as `_last`."""
    _last: float = field(default=0.0, repr=False)

    @property
    def seconds(self) -> float:
        """From its first request to its last byte sent (so far, while it is running)."""
        return max(0.0, self._last - self._started)

    @property
    def rate(self) -> float:
        """Bytes sent to the engine per second over `seconds` (0 before a second byte)."""
        return self.bytes_sent / self.seconds if self.seconds > 0 else 0.0

    def touched(self, clock: Clock) -> None:
        self.last_at, self._last = clock.now(), clock.monotonic()


class Tally:
    """One request's bytes: fetched (by the wrapped resolvers) and sent. `done()` settles it
    into its pull; bytes fetched after that (a fetch that outlives its reader) still count."""

    def __init__(self, pulls: Pulls, pull: Pull) -> None:
        self.pulls = pulls
        self.pull = pull
        self.upstream = 0
        """Bytes the source's resolver wrote into the store."""
        self.fetched = 0
        """Bytes the site store's resolver wrote (upstream's through it included)."""
        self.sent = 0
        self._site = 0
        pull.reading += 1

    def counted(self, resolver: Resolver, *, upstream: bool) -> Resolver:
        """`resolver`, counting what it writes into the store (inline files included). Wrap
        the source's resolver with `upstream=True`, and the site store's resolver around it
        (if there is one) with `upstream=False`: what the outer one wrote and the inner did
        not came from the site store."""
        return _Counting(resolver, self, upstream)

    def fetched_bytes(self, count: int, *, upstream: bool) -> None:
        """The inner (upstream) counter counts a write before the outer one sees it, so the
        site's share, `fetched - upstream`, never goes down."""
        if upstream:
            self.upstream += count
            self.pulls.add("upstream", count, self.pull)
            return
        self.fetched += count
        site = max(0, self.fetched - self.upstream)
        if site > self._site:
            self.pulls.add("site", site - self._site, self.pull)
            self._site = site

    def sent_bytes(self, count: int) -> None:
        self.sent += count
        self.pull.bytes_sent += count
        self.pull.touched(self.pulls.clock)

    def done(self) -> None:
        stored = max(0, self.sent - max(self.fetched, self.upstream))
        self.pulls.add("store", stored, self.pull)
        self.pull.reading -= 1
        self.pull.touched(self.pulls.clock)


class _Counting:
    """A resolver counting the bytes it writes (see `Tally.counted`)."""

    def __init__(self, inner: Resolver, tally: Tally, upstream: bool) -> None:
        self.inner = inner
        self.tally = tally
        self.upstream = upstream

    async def resolve(self) -> Manifest:
        manifest = await self.inner.resolve()
        inline = sum(len(f.data) for f in manifest.files if f.data is not None)
        if inline:
            self.tally.fetched_bytes(inline, upstream=self.upstream)
        return manifest

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        await self.inner.fetch(file, _CountingSink(sink, self.tally, self.upstream))

    async def close(self) -> None:
        await self.inner.close()


class _CountingSink:
    def __init__(self, inner: BlobSink, tally: Tally, upstream: bool) -> None:
        self.inner = inner
        self.tally = tally
        self.upstream = upstream

    @property
    def size(self) -> int:
        return self.inner.size

    def missing(self) -> list[tuple[int, int]]:
        return self.inner.missing()

    async def write(self, offset: int, data: bytes) -> None:
        if self.upstream:  # received, whether or not the store takes it
            self.tally.fetched_bytes(len(data), upstream=True)
            await self.inner.write(offset, data)
            return
        await self.inner.write(offset, data)
        self.tally.fetched_bytes(len(data), upstream=False)


class Pulls:
    """The newest `RECENT` pulls, and bytes by source since start."""

    def __init__(self, recent: int = RECENT, clock: Clock | None = None) -> None:
        self.recent = recent
        self.totals: Counter[str] = Counter(dict.fromkeys(SOURCES, 0))
        self._pulls: OrderedDict[int, Pull] = OrderedDict()
        self._ids = 0
        self.clock = clock or SystemClock()

    def pulls(self) -> list[Pull]:
        """Newest first."""
        return list(reversed(self._pulls.values()))

    def manifest(self, repo: Repository, reference: str, private: bool) -> Tally:
        """A manifest request: by tag, a new pull; by digest, the pull that named it."""
        pull = None
        if reference.startswith("sha256:"):
            pull = self._find(repo, reference, private)
        if pull is None:
            separator = "@" if reference.startswith("sha256:") else ":"
            pull = self._start(repo, reference, separator, private)
        return Tally(self, pull)

    def blob(self, repo: Repository, digest: str, private: bool) -> Tally:
        pull = self._find(repo, digest, private) or self._start(repo, digest, "@", private)
        pull.blobs += 1
        return Tally(self, pull)

    def served_manifest(self, tally: Tally, digest: str, body: bytes) -> None:
        """What a manifest names, so the requests that follow find their pull."""
        pull = tally.pull
        if pull.digest is None:
            pull.digest = digest
        pull.named.add(digest)
        pull.named.update(_named(body))

    def add(self, source: str, count: int, pull: Pull) -> None:
        if count:
            self.totals[source] += count
            pull.bytes_from[source] += count

    def _find(self, repo: Repository, digest: str, private: bool) -> Pull | None:
        same = [p for p in self.pulls() if p.repository == str(repo) and p.private == private]
        return next((p for p in same if digest in p.named), same[0] if same else None)

    def _start(self, repo: Repository, reference: str, separator: str, private: bool) -> Pull:
        now, started = self.clock.now(), self.clock.monotonic()
        image = f"{repo}{separator}{reference}"
        pull = Pull(image, str(repo), reference, private, now, _started=started)
        pull.touched(self.clock)
        self._ids += 1
        self._pulls[self._ids] = pull
        while len(self._pulls) > self.recent:
            self._pulls.popitem(last=False)
        return pull


def _named(body: bytes) -> set[str]:
    """The digests a manifest (config and layers) or an index (its manifests) names."""
    try:
        document = json.loads(body)
    except ValueError:
        return set()
    if not isinstance(document, dict):
        return set()
    items = [document.get("config"), *(document.get("layers") or ())]
    items += list(document.get("manifests") or ())
    return {d["digest"] for d in items if isinstance(d, dict) and isinstance(d.get("digest"), str)}
