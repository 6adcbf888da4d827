"""The store: acquire an entry (hit, or fetch it exactly once), lease it, pin it, let it go.

    acquire(request, resolver, holder)
      ├─ hit: a ready entry for the request that is fresh (or pinned) → lease, count, no network
      └─ miss: one shared fetch per request, however many callers wait:
           resolve → entry (request, version) → link blobs already here → reserve space
           → fetch missing blobs (one download per blob across entries) → build view → ready

An entry is `ready` only once every file points at a committed blob and its view is complete.
Expiry, sweeping, garbage collection, crash recovery and scrubbing are in maintenance.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..aiotasks import all_or_nothing
from ..clock import Clock
from ..db import Database, DatabaseDamaged
from ..errors import (
    Conflict,
    InsufficientSpace,
    NosanaCacheError,
    NotFound,
    StoreError,
    UpstreamIntegrityError,
)
from ..logs import get_logger
from ..settings import StoreSettings
from . import index, maintenance
from .blobs import (
    BlobPaths,
    Ingest,
    MemoryIngest,
    commit_blob,
    sync_filesystem,
    write_small_blob,
)
from .models import (
    Entry,
    EntryRequest,
    EntryState,
    EvictHook,
    FileSpec,
    Manifest,
    Progress,
    Resolver,
    entry_id_for,
)
from .space import EmergencyRoom, Reservation, Room, SpaceKeeper
from .views import Views, validate_tree

log = get_logger(__name__)

RESUMABLE_SIZE = 8 * 1024 * 1024
"""Files at least this large keep their temp file across failures and restarts."""
SMALL_BLOB = 512 * 1024
"""Files up to this size are gathered in memory and written without a temp file of their own."""
SAVE_EVERY = 2.0
FILES_AT_ONCE = 64


@dataclass
class Lease:
    """A hold on a ready entry: it is not evicted while held. Release it when done."""

    entry: Entry
    lease_id: int
    hit: bool
    view: Path | None


@dataclass(frozen=True)
class Usage:
    """What the store holds and how much room is left: for status, metrics and readiness."""

    bytes_used: int
    blobs: int
    entries_by_state: dict[str, int]
    room: Room


@dataclass(frozen=True)
class TypeTotal:
    """Entries of one type in one state, and their bytes."""

    type: str
    state: str
    entries: int
    bytes: int


@dataclass(frozen=True)
class Scratch:
    """A job's writable scratch folder, as this process and as the Docker engine see it."""

    local: Path
    engine: Path


@dataclass
class _Tracker:
    """Progress of one entry's fetch."""

    total: int = 0
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    kind: str = ""  # the entry's type, for per-type byte counts

    def count(self, n: int) -> None:
        self.done += n


@dataclass
class _Fetch:
    """One in-flight fetch of a request; `resolved` gives its entry id as soon as it is known."""

    resolved: asyncio.Future[str]
    task: asyncio.Task[str]


class Store:
    def __init__(self, settings: StoreSettings, *, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.paths = BlobPaths(settings.path)
        self.views = Views(settings.path / "views")
        self.db = Database(settings.path / "index.sqlite", index.MIGRATIONS, name="index")
        self.expiry = index.Expiry(settings.ttl, settings.ttl_from == "last_use")
        self.space = SpaceKeeper(settings, self.db, self.expiry, self.evict, self.gc)
        self.emergency_room = EmergencyRoom(settings.path / "reserve")
        self._fetches: dict[str, _Fetch] = {}
        self._blob_fetches: dict[str, asyncio.Future[str]] = {}
        self._progress: dict[str, _Tracker] = {}
        self._deleting: dict[str, asyncio.Event] = {}
        self._evict_hooks: dict[str, EvictHook] = {}
        self._file_slots = asyncio.Semaphore(FILES_AT_ONCE)
        self.stats = maintenance.Stats()

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
        await asyncio.to_thread(
            maintenance.prepare_folders, self.settings.path, self.paths, self.views
        )
        had_index = self.db.path.exists()
        try:
            await self.db.open()
            orphans = await maintenance.recover(self)
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
            await maintenance.recover(self)
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
        fetches = [f.task for f in self._fetches.values()]
        for task in fetches:
            task.cancel()
        if fetches:
            await asyncio.wait(fetches, timeout=10)
        try:
            await self.checkpoint()
            await self.db.run(lambda c: index.set_meta(c, maintenance.CLEAN, "1"))
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
        await self.db.run(lambda c: index.set_meta(c, maintenance.SYNCED_BEFORE, repr(started)))

    def on_evict(self, entry_type: str, hook: EvictHook) -> None:
        """Run `hook` before an entry of this type is deleted (removing a Docker image)."""
        self._evict_hooks[entry_type] = hook

    # -- reading ----------------------------------------------------------------------------

    async def get(self, entry_id: str) -> Entry:
        entry = await self.db.read(lambda c: index.get_entry(c, entry_id))
        if entry is None:
            raise NotFound(f"no entry {entry_id}")
        return entry

    async def entries(self, states: Sequence[str] = ()) -> list[Entry]:
        return await self.db.read(lambda c: index.list_entries(c, states))

    async def files(self, entry_id: str) -> list[dict[str, Any]]:
        rows = await self.db.read(lambda c: index.entry_files(c, entry_id))
        return [dict(r) | {"executable": bool(r["executable"])} for r in rows]

    def progress(self, entry_id: str) -> Progress | None:
        tracker = self._progress.get(entry_id)
        return Progress(tracker.done, tracker.total) if tracker else None

    def transfers_in_flight(self) -> int:
        return len(self._fetches)

    def is_fetching(self, request_key: str) -> bool:
        return request_key in self._fetches

    def is_downloading(self, blob_key: str) -> bool:
        return blob_key in self._blob_fetches

    def view_path(self, entry: Entry) -> Path | None:
        if entry.external or entry.state != EntryState.READY:
            return None
        return self.views.path(entry.id)

    def expires_at(self, entry: Entry) -> float | None:
        return self.expiry.of(entry)

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
        used, blobs = await self.db.read(index.usage)
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
                partial(self._take_hit, request=request, holder=holder, now=self.clock.now())
            )
            if hit is not None:
                self.stats.hits[request.type] += 1
                return hit
            entry_id = await asyncio.shield(self._start(request, resolver).task)
            lease_id = await self.db.run(
                partial(index.add_lease, entry_id=entry_id, holder=holder, now=self.clock.now())
            )
            if lease_id is not None:
                self.stats.misses[request.type] += 1
                entry = await self.get(entry_id)
                return Lease(entry, lease_id, hit=False, view=self.view_path(entry))
        raise StoreError(f"{request.source}: the entry kept disappearing while acquiring it")

    def _take_hit(self, conn: Any, request: EntryRequest, holder: str, now: float) -> Lease | None:
        entry = index.find_servable(conn, request.request_key, now, self.expiry)
        if entry is None:
            return None
        lease_id = index.add_lease(conn, entry.id, holder, now)
        if lease_id is None:
            return None
        index.count_hit(conn, entry.id, now)
        return Lease(entry, lease_id, hit=True, view=self.view_path(entry))

    async def ensure(self, request: EntryRequest, resolver: Resolver) -> Entry:
        """Start (or join) the fetch of `request` without holding it; returns once resolved."""
        now = self.clock.now()
        ready = await self.db.read(
            lambda c: index.find_servable(c, request.request_key, now, self.expiry)
        )
        if ready is not None:
            return ready
        fetch = self._start(request, resolver)
        entry_id = await asyncio.shield(fetch.resolved)
        return await self.get(entry_id)

    async def wait_ready(self, request: EntryRequest, resolver: Resolver) -> Entry:
        """Like `ensure`, but returns only when the entry is ready (or raises its error)."""
        entry = await self.ensure(request, resolver)
        fetch = self._fetches.get(request.request_key)
        if entry.state != EntryState.READY and fetch is not None:
            entry_id = await asyncio.shield(fetch.task)
            return await self.get(entry_id)
        return entry

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
        now = self.clock.now()
        await self.db.run(lambda c: index.pin(c, entry_id, owner, now))

    async def unpin(self, entry_id: str, owner: str) -> None:
        await self.db.run(lambda c: index.unpin(c, entry_id, owner))

    async def pinned_by(self, owner: str) -> list[str]:
        return await self.db.read(lambda c: index.pinned_by(c, owner))

    # -- fetching ---------------------------------------------------------------------------

    def _start(self, request: EntryRequest, resolver: Resolver) -> _Fetch:
        """The in-flight fetch of `request`, started if there is none (single flight)."""
        fetch = self._fetches.get(request.request_key)
        if fetch is not None:
            return fetch
        loop = asyncio.get_running_loop()
        resolved: asyncio.Future[str] = loop.create_future()
        task = loop.create_task(
            self._materialize_then_close(request, resolver, resolved),
            name=f"fetch:{request.source}",
            context=contextvars.Context(),  # shared by every caller: it belongs to none
        )
        fetch = _Fetch(resolved, task)
        self._fetches[request.request_key] = fetch

        def finished(done: asyncio.Task[str]) -> None:
            self._fetches.pop(request.request_key, None)
            if not resolved.done():
                if done.cancelled():
                    resolved.cancel()
                elif done.exception() is not None:
                    resolved.set_exception(done.exception())  # type: ignore[arg-type]
                    resolved.exception()  # retrieved: `ensure` callers may never look
            if not done.cancelled():
                done.exception()  # retrieved: waiters get it through the task

        task.add_done_callback(finished)
        return fetch

    async def _materialize_then_close(
        self, request: EntryRequest, resolver: Resolver, resolved: asyncio.Future[str]
    ) -> str:
        try:
            return await self._materialize(request, resolver, resolved)
        finally:
            await resolver.close()

    async def _materialize(
        self, request: EntryRequest, resolver: Resolver, resolved: asyncio.Future[str]
    ) -> str:
        started = time.monotonic()
        manifest = await resolver.resolve()
        validate_tree(f.path for f in manifest.files)
        entry_id = entry_id_for(request.request_key, manifest.version)
        if entry_id in self._deleting:
            await self._deleting[entry_id].wait()
        existing = await self.db.read(lambda c: index.get_entry(c, entry_id))
        if existing is not None and existing.state == EntryState.READY:
            now = self.clock.now()
            expires = self.expiry.of(existing)
            if expires is not None and expires <= now:
                await self.db.run(lambda c: index.renew(c, entry_id, now))
                log.info("entry.revalidated", entry_id=entry_id, source=request.source)
            resolved.set_result(entry_id)
            return entry_id
        now = self.clock.now()
        await self.db.run(
            lambda c: index.begin_entry(
                c,
                entry_id,
                request,
                manifest.version,
                manifest.details,
                manifest.files,
                now,
                external=manifest.external_size is not None,
            )
        )
        resolved.set_result(entry_id)
        log.info(
            "fetch.started", entry_id=entry_id, source=request.source, files=len(manifest.files)
        )
        try:
            await self._fill(entry_id, request, manifest, resolver)
        except asyncio.CancelledError:
            await asyncio.shield(self._set_state(entry_id, EntryState.PENDING, "interrupted"))
            raise
        except BaseException as exc:
            message = exc.message if isinstance(exc, NosanaCacheError) else repr(exc)
            if isinstance(exc, InsufficientSpace):
                await asyncio.to_thread(self.emergency_room.give_up)  # room to record this
            await asyncio.shield(self._set_state(entry_id, EntryState.FAILED, message))
            self.stats.failures[type(exc).__name__] += 1
            log.warning("fetch.failed", entry_id=entry_id, source=request.source, error=message)
            raise
        finally:
            self._progress.pop(entry_id, None)
        log.info(
            "fetch.ready",
            entry_id=entry_id,
            source=request.source,
            seconds=round(time.monotonic() - started, 3),
        )
        return entry_id

    async def _set_state(self, entry_id: str, state: EntryState, error: str | None) -> None:
        await self.db.run(lambda c: index.set_state(c, entry_id, state, error))
        if state != EntryState.READY:
            await asyncio.to_thread(self.views.remove, entry_id)

    async def _fill(
        self, entry_id: str, request: EntryRequest, manifest: Manifest, resolver: Resolver
    ) -> None:
        missing = await self.db.run(lambda c: _link_present(c, entry_id, manifest.files))
        unique: dict[str, int] = {}
        for spec in missing:
            unique[_blob_key(entry_id, spec)] = spec.size
        need = sum(unique.values())
        tracker = self._progress.setdefault(entry_id, _Tracker(total=need, kind=request.type))
        async with self.space.reserve(need, request.source) as reservation:
            await all_or_nothing(
                [
                    self._fetch_file(entry_id, spec, resolver, tracker, reservation)
                    for spec in missing
                ]
            )
        if manifest.files:
            rows = await self.db.read(lambda c: index.entry_files(c, entry_id))
            links = [(r["path"], self.paths.blob(r["sha256"]), bool(r["executable"])) for r in rows]
            await asyncio.to_thread(self.views.build, entry_id, links)
        now = self.clock.now()
        ok = await self.db.run(lambda c: index.mark_ready(c, entry_id, now, manifest.external_size))
        if not ok:
            raise StoreError(f"{request.source}: a blob went missing while the entry was built")

    async def _fetch_file(
        self,
        entry_id: str,
        spec: FileSpec,
        resolver: Resolver,
        tracker: _Tracker,
        reservation: Reservation,
    ) -> None:
        """Get the blob for one file (joining another entry's download of it) and link it."""
        key = _blob_key(entry_id, spec)
        async with self._file_slots:
            for _attempt in range(3):
                shared = self._blob_fetches.get(key)
                if shared is None:
                    await self._download_blob(key, entry_id, spec, resolver, tracker, reservation)
                    return
                try:
                    sha256 = await asyncio.shield(shared)
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        raise
                    continue  # the other download was cancelled, not us: take it over
                linked = await self.db.run(
                    partial(index.link_file, entry_id=entry_id, path=spec.path, sha256=sha256)
                )
                if linked:
                    tracker.done += spec.size
                    return
        raise StoreError(f"{spec.path}: could not keep hold of its blob")

    async def _download_blob(
        self,
        key: str,
        entry_id: str,
        spec: FileSpec,
        resolver: Resolver,
        tracker: _Tracker,
        reservation: Reservation,
    ) -> None:
        shared: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._blob_fetches[key] = shared
        try:
            sha256 = await self._ingest(key, entry_id, spec, resolver, tracker)
            reservation.committed(spec.size)
            shared.set_result(sha256)
        except asyncio.CancelledError:
            shared.cancel()
            raise
        except BaseException as exc:
            shared.set_exception(exc)
            shared.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            self._blob_fetches.pop(key, None)

    async def _ingest(
        self, key: str, entry_id: str, spec: FileSpec, resolver: Resolver, tracker: _Tracker
    ) -> str:
        """Stream one file into a temp file, verify it, commit blob and link in one step."""
        if spec.size <= SMALL_BLOB:
            return await self._ingest_small(entry_id, spec, resolver, tracker)
        resumable = spec.size >= RESUMABLE_SIZE and spec.data is None
        previous = await self.db.read(lambda c: index.get_download(c, key)) if resumable else None
        ingest = _open_ingest(self.paths, spec, previous, tracker)
        saver = None
        if resumable:
            saver = asyncio.get_running_loop().create_task(self._save_progress(key, ingest))
        try:
            if spec.data is not None:
                await ingest.write(0, spec.data)
            else:
                await resolver.fetch(spec, ingest)
            sha256 = await ingest.finish()
        except BaseException as exc:
            # A full disk is not resumed: the half file would hold on to what little is left.
            keep = resumable and not isinstance(exc, UpstreamIntegrityError | InsufficientSpace)
            if keep:
                ingest.close()
                await asyncio.shield(self._record_download(key, ingest))
            else:
                ingest.discard()
                await asyncio.shield(self.db.run(lambda c: index.delete_download(c, key)))
            raise
        finally:
            if saver is not None:
                saver.cancel()
        aliases = [spec.alias] if spec.alias else []
        now = self.clock.now()

        def commit(conn: Any) -> None:
            if index.has_blob(conn, sha256):
                ingest.discard()
            else:
                commit_blob(self.paths, ingest.tmp_path, sha256)
            index.add_blob(conn, sha256, spec.size, now, aliases)
            index.delete_download(conn, key)
            index.link_file(conn, entry_id, spec.path, sha256)

        # Shielded: once verified, the blob is committed even if this fetch is cancelled,
        # else its temp file would be orphaned until the next start.
        await asyncio.shield(self.db.run(commit))
        self.stats.bytes_fetched[tracker.kind] += spec.size
        return sha256

    async def _ingest_small(
        self, entry_id: str, spec: FileSpec, resolver: Resolver, tracker: _Tracker
    ) -> str:
        sink = MemoryIngest(spec.expected, name=spec.path, on_bytes=tracker.count)
        if spec.data is not None:
            await sink.write(0, spec.data)
        else:
            await resolver.fetch(spec, sink)
        sha256, data = sink.finish()
        aliases = [spec.alias] if spec.alias else []
        now = self.clock.now()

        def commit(conn: Any) -> None:
            if not index.has_blob(conn, sha256):
                write_small_blob(self.paths, sha256, data)
            index.add_blob(conn, sha256, spec.size, now, aliases)
            index.link_file(conn, entry_id, spec.path, sha256)

        await asyncio.shield(self.db.run(commit))
        self.stats.bytes_fetched[tracker.kind] += spec.size
        return sha256

    async def _record_download(self, key: str, ingest: Ingest) -> None:
        now = self.clock.now()
        ranges = ingest.written()
        await self.db.run(
            lambda c: index.save_download(c, key, ingest.tmp_path.name, ingest.size, ranges, now)
        )

    async def _save_progress(self, key: str, ingest: Ingest) -> None:
        """Remember what a large download has written, so a killed daemon resumes it."""
        while True:
            await self._record_download(key, ingest)
            await asyncio.sleep(SAVE_EVERY)

    # -- removing ---------------------------------------------------------------------------

    async def evict(self, entry: Entry, reason: str) -> bool:
        """Delete an entry that nothing holds; False if a pin or lease appeared meanwhile."""
        done = asyncio.Event()
        self._deleting[entry.id] = done
        try:
            marked = await self.db.run(lambda c: _mark_deleting(c, entry.id))
            if not marked:
                return False
            hook = self._evict_hooks.get(entry.type)
            if hook is not None and entry.external:
                try:
                    await hook(entry)  # e.g. remove the image from the engine
                except BaseException:
                    await asyncio.shield(self._set_state(entry.id, EntryState.READY, None))
                    raise
            await asyncio.to_thread(self.views.remove, entry.id)
            await self.db.run(lambda c: index.delete_entry(c, entry.id))
            self.stats.evictions[reason] += 1
            log.info("entry.evicted", entry_id=entry.id, source=entry.source, reason=reason)
            return True
        finally:
            done.set()
            self._deleting.pop(entry.id, None)

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
        return await maintenance.gc(self)

    async def sweep(self) -> maintenance.SweepReport:
        report = await maintenance.sweep(self)
        await asyncio.to_thread(self.emergency_room.hold)
        return report

    async def verify(self) -> maintenance.VerifyReport:
        return await maintenance.verify(self)

    async def unfinished(self) -> list[Entry]:
        """Entries a previous run left half-fetched: the service resumes them."""
        return await self.entries([EntryState.PENDING])


def _blob_key(entry_id: str, spec: FileSpec) -> str:
    """What identifies a blob before its bytes are seen: its sha256, else its upstream alias."""
    if spec.expected.sha256:
        return f"sha256:{spec.expected.sha256}"
    if spec.alias:
        return f"alias:{spec.alias}"
    return f"file:{entry_id}:{spec.path}"


def _open_ingest(paths: BlobPaths, spec: FileSpec, previous: Any, tracker: _Tracker) -> Ingest:
    count = tracker.count
    if previous is not None and previous["size"] == spec.size:
        tmp = paths.tmp / previous["tmp_name"]
        if tmp.exists():
            written = [(int(s), int(e)) for s, e in json.loads(previous["ranges"])]
            ingest = Ingest(
                paths,
                spec.expected,
                name=spec.path,
                tmp_path=tmp,
                written=written,
                on_bytes=count,
            )
            tracker.done += sum(e - s for s, e in written)
            log.info("fetch.resuming", file=spec.path, bytes=sum(e - s for s, e in written))
            return ingest
    return Ingest(paths, spec.expected, name=spec.path, on_bytes=count)


def _link_present(conn: Any, entry_id: str, files: Sequence[FileSpec]) -> list[FileSpec]:
    """Link every file whose blob is already here; return the ones still to fetch."""
    missing = []
    for spec in files:
        sha256 = spec.expected.sha256
        if sha256 is None and spec.alias:
            sha256 = index.blob_for_alias(conn, spec.alias, spec.size)
        if sha256 is None or not index.link_file(conn, entry_id, spec.path, sha256):
            missing.append(spec)
    return missing


def _mark_deleting(conn: Any, entry_id: str) -> bool:
    cursor = conn.execute(
        """UPDATE entries SET state = 'deleting' WHERE id = ? AND state != 'deleting'
             AND NOT EXISTS (SELECT 1 FROM pins WHERE entry_id = ?)
             AND NOT EXISTS (SELECT 1 FROM leases WHERE entry_id = ?)""",
        (entry_id, entry_id, entry_id),
    )
    return bool(cursor.rowcount)
