"""A repo at a revision (`main`, a tag, a commit) → its commit and listing, once per ttl.

A revision is an entry of the store like any other: resolved upstream once (repo info and tree,
hub_upstream.py), kept as a one-file entry for `store.ttl`, shared by every request meanwhile,
evicted by the store's rules. So a hit, be it a repo-info, tree or file request, asks upstream
nothing. Parsed listings are kept in memory by entry id (a snapshot of a thousand files asks
for the same listing two thousand times).

A revision that is a commit hash names a listing that never changes: if that commit's listing
is here already (resolved through `main`, say), it is used without asking upstream. While
upstream cannot be asked, the newest listing of the revision that the store still has is used,
however old (cached revisions keep serving while the Hub is down).

Revisions stay off the site store (files go through it: mirror.py). A listing costs upstream
two small calls per ttl; whether its repo is private is known only once it has come; a node
waiting on another's listing would hold a metadata call behind that node's uploads; and a
listing fetched again is never the site's copy byte for byte (upstream's counters move), so a
damaged copy could not be made good from upstream as a file's piece is.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from pathlib import Path
from typing import TypeVar

from ..errors import StoreError, UpstreamUnavailable
from ..logs import get_logger
from ..sources.hub_listing import LISTING_FILE, Listing, RepoRef
from ..sources.hub_upstream import HubUpstream
from ..store import Entry, EntryRequest, Store

log = get_logger(__name__)

PARSED_LISTINGS = 64
KNOWN_COMMITS = 1024
_COMMIT = re.compile(r"[0-9a-f]{40}")
K = TypeVar("K")


class Revisions:
    def __init__(self, store: Store, upstream: HubUpstream) -> None:
        self.store = store
        self.upstream = upstream
        self._parsed: OrderedDict[str, Listing] = OrderedDict()
        self._commits: OrderedDict[tuple[RepoRef, str], Listing] = OrderedDict()

    async def listing(self, repo: RepoRef, revision: str, authorization: str | None) -> Listing:
        """The repo at `revision`: from the store if it is here and fresh, else from upstream
        (once, however many ask), else the newest the store has if upstream is down."""
        known = self._commits.get((repo, revision)) if _COMMIT.fullmatch(revision) else None
        fetch = self.upstream.revision(repo, revision, authorization, known)
        entry = await self.store.find(fetch.request)
        if entry is not None and entry.id in self._parsed:
            return self._remember(entry.id, self._parsed[entry.id])
        try:
            lease = await self.store.acquire(fetch.request, fetch.resolver, holder="hub:revision")
        except UpstreamUnavailable as exc:
            return await self._stale(fetch.request, repo, revision, exc)
        try:
            listing = await self._read(lease.entry)
        finally:
            await self.store.release(lease)
        return self._remember(lease.entry.id, listing)

    async def _stale(
        self, wanted: EntryRequest, repo: RepoRef, revision: str, error: UpstreamUnavailable
    ) -> Listing:
        """The newest listing of the revision still in the store; the upstream error if none."""
        entry = await self.store.find(wanted, stale=True)
        if entry is None:
            raise error
        log.warning("hub.stale_revision", repo=str(repo), revision=revision, commit=entry.version)
        listing = self._parsed.get(entry.id)
        if listing is None:
            try:
                listing = await self._read(entry)
            except (OSError, StoreError):
                raise error from None
        return self._remember(entry.id, listing)

    async def _read(self, entry: Entry) -> Listing:
        view = self.store.view_path(entry)
        if view is None:
            raise StoreError(f"{entry.source}: the revision entry has no view")
        data = await asyncio.to_thread(Path(view, LISTING_FILE).read_bytes)
        return Listing.from_bytes(data)

    def _remember(self, entry_id: str, listing: Listing) -> Listing:
        _put(self._parsed, entry_id, listing, PARSED_LISTINGS)
        _put(self._commits, (listing.repo, listing.commit), listing, KNOWN_COMMITS)
        return listing


def _put(table: OrderedDict[K, Listing], key: K, listing: Listing, limit: int) -> None:
    """Keep `listing` under `key`, dropping the least recently used beyond `limit`."""
    table[key] = listing
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
