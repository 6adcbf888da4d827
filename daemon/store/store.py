"""The store: acquire an entry (hit, or fetch it exactly once), lease it, pin it, let it go.

    acquire(request, resolver, holder)
      ├─ hit: a ready entry for the request that is fresh (or pinned) → lease, count, no network
      └─ miss: one shared fetch per request, however many callers wait:
           resolve → entry (request, version) → link blobs already here → reserve space
           → fetch missing blobs (one download per blob across entries) → build view → ready

An entry is `ready` only once every file points at a committed blob and its view is complete.
Whoever cares how a fetch ended (the site store, to upload) subscribes with `on_fetched`.
The store owns the parts and the lifetime; the work is in its components:

    fetching.py     one shared fetch per request (resolve, record, fill, ready or failed)
    filling.py      one entry's files: link what is here, download the rest once per blob
    growing.py, reading.py   a file read while its blob is still being written
    space.py        room for a download (max_size, min_free), evicting oldest first
    maintenance.py  crash recovery, the ttl sweep, garbage collection, scrubbing
    index.py, blob_index.py, schema.py   the SQLite index; blobs.py, views.py   the files
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import Conflict, InsufficientSpace, NotFound, StoreError
from ..logs import get_logger
from ..settings import StoreSettings
from ..util.clock import Clock
from ..util.db import Database, DatabaseDamaged
from . import blob_index, index
from .blobs import BlobPaths, sync_filesystem
from .digests import is_sha256
from .fetching import Fetcher
from .lookup import Lookup, look_up
from .maintenance import (
    CLEAN,
    SYNCED_BEFORE,
    Maintenance,
    SweepReport,
    VerifyReport,
    prepare_folders,
)
from .models import (
    Entry,
    EntryRequest,
    EntryState,
    EvictHook,
    FetchHook,
    FileSpec,
    Lease,
    Progress,
    Resolver,
    Scratch,
    StoredFile,
    TypeTotal,
)
from .parts import Parts
from .reading import FileStream, Reading
from .space import EmergencyRoom, Room, SpaceKeeper
from .views import Views

log = get_logger(__name__)


@dataclass(frozen=True)
class Usage:
    """What the store holds and how much room is left: for status, metrics and readiness."""

    bytes_used: int
    blobs: int
    entries_by_state: dict[str, int]
    room: Room


class Store:
    def __init__(self, settings: StoreSettings, *, clock: Clock) -> None:
        self.settings = settings
        self.paths = BlobPaths(settings.path)
        self.views = Views(settings.path / "views")
        self.db = Database(settings.path / "index.sqlite", index.MIGRATIONS, name="index")
        expiry = index.Expiry(settings.ttl, settings.ttl_from == "last_use")
        self.parts = Parts(self.db, self.paths, self.views, clock, expiry)
        self.space = SpaceKeeper(settings, self.db, expiry, self.evict, self.gc)
        self.emergency_room = EmergencyRoom(settings.path / "reserve")
        self.fetcher = Fetcher(self.parts, self.space, self.emergency_room)
        self.maintenance = Maintenance(self.parts, self.fetcher, self.evict)
        self.reading = Reading(self.parts, self.fetcher)
        self.stats = self.parts.stats
        self._evict_hooks: dict[str, EvictHook] = {}

    # -- lifetime ---------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: StoreSettings, *, clock: Clock) -> AsyncIterator[Store]:
        store = cls(settings, clock=clock)
        await store.start()
        try:
            yield store
        finally:
            await store.close()

    async def start(self) -> None:
        await asyncio.to_thread(prepare_folders, self.settings.path, self.paths, self.views)
        had_index = self.db.path.exists()
        try:
            await self.db.open()
            orphans = await self.maintenance.recover()
        except DatabaseDamaged as exc:
            # A cache can start over; it must not serve from an index it cannot trust. With
            # a fresh index, recovery removes every blob and view the old one described.
            moved = await self.db.set_aside()
            log.error(
                "store.index_damaged",
                error=exc.message,
                moved_to=str(moved),
                action="starting with an empty store; its blobs and views are removed",
            )
            await self.db.open()
            await self.maintenance.recover()
        else:
            if not had_index and orphans:
                log.warning(
                    "store.index_missing",
                    path=str(self.db.path),
                    action="started with an empty store; blobs and views without an index "
                    "were removed",
                    blobs_removed=orphans,
                )
        await asyncio.to_thread(self.emergency_room.hold)

    async def close(self) -> None:
        await self.fetcher.close()
        try:
            await self.checkpoint()
            await self.db.run(lambda c: index.set_meta(c, CLEAN, "1"))
        except InsufficientSpace as exc:
            # Not recorded as clean: the next start re-hashes what this one may not have synced.
            log.warning("store.unclean_close", error=exc.message)
        await self.db.close()

    async def checkpoint(self) -> None:
        """Make every blob written so far durable (one syncfs), and remember up to when.

        Blobs are not fsynced one by one: that would bound downloads by the disk's sync
        latency. After an unclean stop, blobs written after the last checkpoint are re-hashed
        before anything is served (maintenance.recover).
        """
        started = time.time()
        await asyncio.to_thread(sync_filesystem, self.settings.path)
        await self.db.run(lambda c: index.set_meta(c, SYNCED_BEFORE, repr(started)))

    def on_evict(self, entry_type: str, hook: EvictHook) -> None:
        """Run `hook` before an entry of this type is deleted (removing a Docker image)."""
        self._evict_hooks[entry_type] = hook

    def on_fetched(self, hook: FetchHook) -> None:
        """Tell `hook` once how each fetch ends: its entry ready (with its files), or not
        (failed, cut). Hits fetch nothing and tell nothing. The hook runs inside the fetch:
        it schedules its work; if it raises, that is logged and the fetch goes on."""
        self.fetcher.on_end(hook)

    # -- reading ----------------------------------------------------------------------------

    async def get(self, entry_id: str) -> Entry:
        entry = await self.db.read(lambda c: index.get_entry(c, entry_id))
        if entry is None:
            raise NotFound(f"no entry {entry_id}")
        return entry

    async def entries(self, states: Sequence[str] = ()) -> list[Entry]:
        return await self.db.read(lambda c: index.list_entries(c, states))

    async def files(self, entry_id: str) -> list[StoredFile]:
        return await self.db.read(lambda c: index.entry_files(c, entry_id))

    async def open_blob(self, sha256: str) -> BinaryIO:
        """A blob's file, open for reading (and readable to its end even if an eviction
        removes it meanwhile); `NotFound` if it is not here. Close it."""
        if not is_sha256(sha256):  # never a path of the caller's making
            raise NotFound(f"no blob {sha256!r}")
        path = self.paths.blob(sha256)
        try:
            return await asyncio.to_thread(lambda: open(path, "rb"))
        except FileNotFoundError as exc:
            raise NotFound(f"no blob {sha256}") from exc

    def progress(self, entry_id: str) -> Progress | None:
        return self.fetcher.progress(entry_id)

    def transfers_in_flight(self) -> int:
        return self.fetcher.in_flight()

    def view_path(self, entry: Entry) -> Path | None:
        if entry.external or entry.state != EntryState.READY:
            return None
        return self.views.path(entry.id)

    def expires_at(self, entry: Entry) -> float | None:
        return self.parts.expiry.of(entry)

    def engine_view_path(self, entry_id: str) -> Path:
        """An entry's view as the Docker engine must name it in a bind mount (the store may
        sit elsewhere on the engine's host: `store.host_path`)."""
        return self.settings.engine_path / self.views.root.name / entry_id

    def op_scratch(self, job_id: str, op_key: str) -> Scratch:
        """Where one op's writable layers live (removed with `remove_op_scratch` when the op
        ends; the job's whole folder goes with its records)."""
        relative = Path("jobs") / job_id / "rw" / op_key
        return Scratch(self.settings.path / relative, self.settings.engine_path / relative)

    async def remove_op_scratch(self, job_id: str, op_key: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.op_scratch(job_id, op_key).local, True)

    async def usage(self) -> Usage:
        """Bytes and blobs held, entries by state, and the room left (raises if the index
        cannot answer: readiness asks exactly that)."""
        used, blobs = await self.db.read(blob_index.usage)
        states = await self.db.read(index.counts_by_state)
        return Usage(used, blobs, states, await self.space.room())

    async def totals(self) -> list[TypeTotal]:
        """Entries and bytes by type and state (metrics)."""
        rows = await self.db.read(index.totals_by_type_and_state)
        return [TypeTotal(*row) for row in rows]

    # -- acquiring --------------------------------------------------------------------------

    async def acquire(self, request: EntryRequest, resolver: Resolver, holder: str) -> Lease:
        """A lease on a ready entry for `request`: a hit if one is here, else fetched once."""
        for _attempt in range(5):
            hit = await self.db.run(
                partial(self._take_hit, request=request, holder=holder, now=self.parts.clock.now())
            )
            if hit is not None:
                self.stats.hits[request.type] += 1
                return hit
            entry_id = await asyncio.shield(self.fetcher.start(request, resolver).task)
            lease_id = await self.db.run(
                partial(
                    index.add_lease, entry_id=entry_id, holder=holder, now=self.parts.clock.now()
                )
            )
            if lease_id is not None:
                self.stats.misses[request.type] += 1
                entry = await self.get(entry_id)
                return Lease(entry, lease_id, hit=False, view=self.view_path(entry))
        raise StoreError(f"{request.source}: the entry kept disappearing while acquiring it")

    def _take_hit(self, conn: Any, request: EntryRequest, holder: str, now: float) -> Lease | None:
        hit = index.take_hit(conn, request.request_key, holder, now, self.parts.expiry)
        if hit is None:
            return None
        entry, lease_id = hit
        return Lease(entry, lease_id, hit=True, view=self.view_path(entry))

    async def look_up(self, request: EntryRequest) -> Lookup:
        """A dry run's verdict on `request` (`Lookup`: cached, or what a fetch would take),
        changing nothing (no lease, no hit, no fetch). `find` gives the entry itself."""
        now = self.parts.clock.now()
        return await self.db.read(lambda c: look_up(c, request.request_key, now, self.parts.expiry))

    async def ensure(self, request: EntryRequest, resolver: Resolver) -> Entry:
        """Start (or join) the fetch of `request` without holding it; returns once resolved."""
        now = self.parts.clock.now()
        ready = await self.db.read(
            lambda c: index.find_servable(c, request.request_key, now, self.parts.expiry)
        )
        if ready is not None:
            return ready
        fetch = self.fetcher.start(request, resolver)
        entry_id = await asyncio.shield(fetch.resolved)
        return await self.get(entry_id)

    async def wait_ready(self, request: EntryRequest, resolver: Resolver) -> Entry:
        """Like `ensure`, but returns only when the entry is ready (or raises its error)."""
        entry = await self.ensure(request, resolver)
        fetch = self.fetcher.get(request.request_key)
        if entry.state != EntryState.READY and fetch is not None:
            entry_id = await asyncio.shield(fetch.task)
            return await self.get(entry_id)
        return entry

    async def find(self, request: EntryRequest, *, stale: bool = False) -> Entry | None:
        """The request's servable entry without holding it, or None; with `stale`, the newest
        ready one however old (what is left while upstream cannot be asked)."""
        key, now, expiry = request.request_key, self.parts.clock.now(), self.parts.expiry
        if stale:
            return await self.db.read(lambda c: index.latest_ready(c, key))
        return await self.db.read(lambda c: index.find_servable(c, key, now, expiry))

    async def open_file(
        self, request: EntryRequest, resolver: Resolver, file: FileSpec, holder: str
    ) -> FileStream:
        """One file of the request's entry to read now, held until the stream is closed: a
        hit, or fetched once and read as its bytes land (reading.py)."""
        return await self.reading.open(request, resolver, file, holder)

    async def release(self, lease: Lease) -> None:
        await self.release_id(lease.lease_id)

    async def release_id(self, lease_id: int) -> None:
        """Release by id: a restarted daemon knows its jobs' leases only by their ids."""
        await self.db.run(lambda c: index.release_lease(c, lease_id))

    async def release_holders(self, keep: Callable[[str], bool]) -> int:
        """Drop leases whose holder is gone (after a restart, holders that did not come back)."""

        def run(conn: Any) -> int:
            stale = [lid for lid, _entry, holder in index.lease_holders(conn) if not keep(holder)]
            for lease_id in stale:
                index.release_lease(conn, lease_id)
            return len(stale)

        return await self.db.run(run)

    # -- pins -------------------------------------------------------------------------------

    async def pin(self, entry_id: str, owner: str) -> None:
        now = self.parts.clock.now()
        await self.db.run(lambda c: index.pin(c, entry_id, owner, now))

    async def unpin(self, entry_id: str, owner: str) -> None:
        await self.db.run(lambda c: index.unpin(c, entry_id, owner))

    async def pinned_by(self, owner: str) -> list[str]:
        return await self.db.read(lambda c: index.pinned_by(c, owner))

    # -- removing ---------------------------------------------------------------------------

    async def evict(self, entry: Entry, reason: str) -> bool:
        """Delete an entry that nothing holds; False if a pin or lease appeared meanwhile."""
        with self.parts.deletions.deleting(entry.id):
            marked = await self.db.run(lambda c: index.mark_deleting(c, entry.id))
            if not marked:
                return False
            hook = self._evict_hooks.get(entry.type)
            if hook is not None and entry.external:
                try:
                    await hook(entry)  # e.g. remove the image from the engine
                except BaseException:
                    await asyncio.shield(self.parts.set_state(entry.id, EntryState.READY, None))
                    raise
            await asyncio.to_thread(self.views.remove, entry.id)
            await self.db.run(lambda c: index.delete_entry(c, entry.id))
            self.stats.evictions[reason] += 1
            log.info("entry.evicted", entry_id=entry.id, source=entry.source, reason=reason)
            return True

    async def delete(self, entry_id: str) -> None:
        """Delete on request (API, CLI): refused while pinned, in use or downloading."""
        entry = await self.get(entry_id)
        if entry.pinned:
            raise Conflict(f"entry {entry_id} is pinned by {', '.join(entry.pinned_by)}")
        if entry.in_use:
            raise Conflict(f"entry {entry_id} is in use by {entry.leases} job op(s)")
        if entry.state == EntryState.DOWNLOADING:
            raise Conflict(f"entry {entry_id} is downloading")
        if not await self.evict(entry, "deleted"):
            raise Conflict(f"entry {entry_id} became pinned or in use")
        await self.gc()

    async def gc(self) -> int:
        return await self.maintenance.gc()

    async def sweep(self) -> SweepReport:
        report = await self.maintenance.sweep()
        await asyncio.to_thread(self.emergency_room.hold)
        return report

    async def verify(self) -> VerifyReport:
        return await self.maintenance.verify()

    async def unfinished(self) -> list[Entry]:
        """Entries a previous run left half-fetched: the service resumes them."""
        return await self.entries([EntryState.PENDING])
