"""What the store's components share: the index, the blob and view trees, time and counters.

`Store` builds one `Parts` and hands it to the fetch pipeline (fetching.py, filling.py) and to
maintenance (maintenance.py), so none of them reaches back into the `Store` that owns them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..util.clock import Clock
from ..util.db import Database
from . import index
from .blobs import BlobPaths
from .models import EntryState
from .views import Views


@dataclass
class Stats:
    """Counters since start, for /metrics and /v1/status."""

    hits: Counter[str] = field(default_factory=Counter)  # by entry type
    misses: Counter[str] = field(default_factory=Counter)  # by entry type
    failures: Counter[str] = field(default_factory=Counter)  # by error kind
    bytes_fetched: Counter[str] = field(default_factory=Counter)  # by entry type
    evictions: Counter[str] = field(default_factory=Counter)  # by reason


class Deletions:
    """Entries being deleted right now: a fetch that resolves to one waits until it is gone,
    then builds it afresh instead of reviving a half-removed entry."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    async def wait(self, entry_id: str) -> None:
        event = self._events.get(entry_id)
        if event is not None:
            await event.wait()

    @contextlib.contextmanager
    def deleting(self, entry_id: str) -> Iterator[None]:
        event = asyncio.Event()
        self._events[entry_id] = event
        try:
            yield
        finally:
            event.set()
            self._events.pop(entry_id, None)


@dataclass(frozen=True)
class Parts:
    db: Database
    paths: BlobPaths
    views: Views
    clock: Clock
    expiry: index.Expiry
    stats: Stats = field(default_factory=Stats)
    deletions: Deletions = field(default_factory=Deletions)

    async def set_state(self, entry_id: str, state: EntryState, error: str | None) -> None:
        """Record an entry's state; an entry that is not ready has no view."""
        await self.db.run(lambda c: index.set_state(c, entry_id, state, error))
        if state != EntryState.READY:
            await asyncio.to_thread(self.views.remove, entry_id)
