"""Resources through the store: the one door that jobs, the market and the API go through.

It pairs a source (who reaches upstream) with the store (who keeps the bytes), with the site
store in front of the source when `site.store` is set, and resumes, after a restart, the
downloads the last run left unfinished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import NosanaCacheError
from .logs import get_logger
from .resources import parse_resource
from .site import Site
from .sources import Resource, Sources, TransferStats
from .sources.registry import TYPE as REGISTRY
from .store import Entry, EntryRequest, Fetch, Lease, Lookup, Resolver, Store
from .util.aiotasks import TaskSet

log = get_logger(__name__)


@dataclass(frozen=True)
class Known:
    """What a dry run learns of a resource: its identity and what the store holds of it."""

    request: EntryRequest
    lookup: Lookup


class Cache:
    def __init__(self, store: Store, sources: Sources, site: Site | None = None) -> None:
        self.store = store
        self.sources = sources
        self.site = site
        self._background = TaskSet("cache")

    def request(self, resource: Resource) -> Fetch[Resolver]:
        """The resource's identity, and who reaches it: the site store first, if there is one."""
        if self.site is not None:
            return self.site.request(resource)
        return self.sources.request(resource)

    async def acquire(self, resource: Resource, holder: str) -> Lease:
        """A lease on the resource's entry: a hit, or a fetch shared with every other caller."""
        fetch = self.request(resource)
        return await self.store.acquire(fetch.request, fetch.resolver, holder)

    async def look_up(self, resource: Resource) -> Known:
        """What the store knows of the resource now, asking no one (a dry run's question)."""
        request = self.sources.request(resource).request
        return Known(request, await self.store.look_up(request))

    async def ensure(self, resource: Resource) -> Entry:
        """Start (or join) the download and return the entry as soon as upstream answered."""
        fetch = self.request(resource)
        return await self.store.ensure(fetch.request, fetch.resolver)

    async def wait_ready(self, resource: Resource) -> Entry:
        fetch = self.request(resource)
        return await self.store.wait_ready(fetch.request, fetch.resolver)

    def transfer_stats(self) -> TransferStats:
        return self.sources.transfer.stats()

    def resume_unfinished(self, entries: list[Entry]) -> int:
        """Restart, in the background, fetches a killed or stopped daemon left behind."""
        resumed = 0
        for entry in entries:
            if not entry.resumable or entry.type == REGISTRY:
                continue  # the registry endpoint resumes its own (registry/mirror.py)
            resource = parse_resource(json.loads(entry.resumable))
            self._background.spawn(self._resume(entry, resource), f"resume:{entry.id}")
            resumed += 1
        return resumed

    async def _resume(self, entry: Entry, resource: Resource) -> None:
        try:
            await self.wait_ready(resource)
            log.info("fetch.resumed", entry_id=entry.id, source=entry.source)
        except NosanaCacheError as exc:
            log.warning("fetch.resume_failed", entry_id=entry.id, error=exc.message)

    async def close(self) -> None:
        await self._background.close()
