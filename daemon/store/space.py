"""Room for a download: `store.max_size` above, `store.min_free` below, decided before writing.

A download of N new bytes first reserves them. If the store would cross its cap, or leave the
filesystem with less than `min_free`, unpinned and unused entries are evicted oldest first, but
only after checking that evicting all of them would be enough; otherwise nothing is evicted and
the download fails before writing a byte, naming the bytes needed and available.
Reservations are in memory: they cover downloads of this process only, which is all there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..errors import InsufficientSpace
from ..logs import get_logger
from ..settings import StoreSettings
from ..util.db import Database
from . import blob_index, index
from .models import Entry

log = get_logger(__name__)


@dataclass
class Reservation:
    """Bytes promised to one download; shrinks as its blobs are committed (they then count
    in the index's usage instead)."""

    outstanding: int

    def committed(self, size: int) -> None:
        self.outstanding = max(0, self.outstanding - size)


@dataclass(frozen=True)
class Room:
    used: int
    reserved: int
    fs_free: int
    max_size: int | None
    min_free: int

    def available(self) -> int:
        """Bytes a new download may take without crossing either limit."""
        by_free = self.fs_free - self.min_free - self.reserved
        if self.max_size is None:
            return by_free
        return min(by_free, self.max_size - self.used - self.reserved)


class EmergencyRoom:
    """A few megabytes held back so the index can still record a failure on a full disk.

    When something else fills the filesystem in the middle of a download, the download fails
    and the index must say so; SQLite needs free pages for that. The store keeps a file of
    `size` bytes and gives it up at the first sign of a full disk, then takes the room back
    once there is space again (every sweep).
    """

    def __init__(self, path: Path, size: int = 4 * 1024 * 1024) -> None:
        self.path = path
        self.size = size

    def hold(self) -> bool:
        """Take the room if it is not held and the disk has it; whether it is held now."""
        if self.path.exists() and self.path.stat().st_size == self.size:
            return True
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
        except OSError:
            self.path.unlink(missing_ok=True)
            return False
        return True

    def give_up(self) -> None:
        if self.path.exists():
            self.path.unlink()
            log.warning("store.disk_full", released=self.size, path=str(self.path.parent))


class SpaceKeeper:
    def __init__(
        self,
        settings: StoreSettings,
        db: Database,
        expiry: index.Expiry,
        evict: Callable[[Entry, str], Awaitable[bool]],
        gc: Callable[[], Awaitable[int]],
    ) -> None:
        self.settings = settings
        self._db = db
        self._expiry = expiry
        self._evict = evict
        self._gc = gc
        self._reservations: list[Reservation] = []
        self._lock = asyncio.Lock()

    async def room(self) -> Room:
        used, _count = await self._db.read(blob_index.usage)
        fs_free = await asyncio.to_thread(_fs_free, self.settings.path)
        return Room(
            used=used,
            reserved=sum(r.outstanding for r in self._reservations),
            fs_free=fs_free,
            max_size=self.settings.max_size,
            min_free=self.settings.min_free,
        )

    @contextlib.asynccontextmanager
    async def reserve(self, need: int, what: str) -> AsyncIterator[Reservation]:
        """Hold `need` bytes for a download, evicting first if that is what it takes."""
        async with self._lock:
            await self._make_room(need, what)
            reservation = Reservation(need)
            self._reservations.append(reservation)
        try:
            yield reservation
        finally:
            self._reservations.remove(reservation)

    async def _make_room(self, need: int, what: str) -> None:
        if need <= 0:
            return
        room = await self.room()
        deficit = need - room.available()
        if deficit <= 0:
            return
        candidates = await self._db.read(lambda c: index.evictable(c, self._expiry))
        ids = [e.id for e in candidates]
        possible = await self._db.read(lambda c: index.bytes_freed_by(c, ids))
        if possible < deficit:
            raise InsufficientSpace(
                need,
                max(0, room.available()),
                f"for {what}; evicting every unpinned, unused entry would free only "
                f"{possible} bytes",
            )
        chosen: list[Entry] = []
        for entry in candidates:
            chosen.append(entry)
            query = partial(index.bytes_freed_by, entry_ids=[e.id for e in chosen])
            if await self._db.read(query) >= deficit:
                break
        for entry in chosen:
            await self._evict(entry, "space")
        blobs = await self._gc()
        log.info("store.evicted_for_space", entries=len(chosen), blobs=blobs, needed=need)
        room = await self.room()
        if room.available() < need:
            raise InsufficientSpace(need, max(0, room.available()), f"for {what}")


def _fs_free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize
