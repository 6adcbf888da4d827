"""Fetching an entry: one shared fetch per request, however many callers wait for it.

    start(request, resolver) → the request's fetch in flight (started if there is none)
      resolve upstream → entry (request, version) → already ready here? done
      → record it `downloading` → fill it (filling.py) → ready, or failed with the reason

The fetch task belongs to no caller (it runs in a fresh context and is shielded from each
caller's cancellation); it ends by closing the resolver, then telling the fetch hooks once how
it ended (`FetchEnded`: the entry and its files when ready). Its `resolved` future gives the
entry id as soon as upstream has answered, for callers that only start a download (`ensure`).
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from dataclasses import dataclass

from ..errors import InsufficientSpace, NosanaCacheError
from ..logs import get_logger
from . import index
from .filling import BlobFlights, EntryFill, Tracker
from .growing import GrowingBlobs
from .models import (
    EntryRequest,
    EntryState,
    FetchEnded,
    FetchHook,
    Manifest,
    Progress,
    Resolver,
    entry_id_for,
)
from .parts import Parts
from .space import EmergencyRoom, SpaceKeeper
from .views import validate_tree

log = get_logger(__name__)

FILES_AT_ONCE = 64
"""Files of all entries fetched at the same time (each may be several ranged parts)."""


@dataclass
class InFlight:
    """One in-flight fetch of a request; `resolved` gives its entry id as soon as it is known."""

    resolved: asyncio.Future[str]
    task: asyncio.Task[str]


class Fetcher:
    def __init__(self, parts: Parts, space: SpaceKeeper, emergency_room: EmergencyRoom) -> None:
        self.parts = parts
        self.space = space
        self.emergency_room = emergency_room
        self._fetches: dict[str, InFlight] = {}
        self._blobs = BlobFlights()
        self.growing = GrowingBlobs()
        """Blobs being written now, which readers may follow as they land."""
        self._progress: dict[str, Tracker] = {}
        self._file_slots = asyncio.Semaphore(FILES_AT_ONCE)
        self._hooks: list[FetchHook] = []

    # -- what is in flight ----------------------------------------------------------------

    def get(self, request_key: str) -> InFlight | None:
        return self._fetches.get(request_key)

    def in_flight(self) -> int:
        return len(self._fetches)

    def is_fetching(self, request_key: str) -> bool:
        return request_key in self._fetches

    def is_downloading(self, blob_key: str) -> bool:
        return self._blobs.is_downloading(blob_key)

    def progress(self, entry_id: str) -> Progress | None:
        tracker = self._progress.get(entry_id)
        return Progress(tracker.done, tracker.total) if tracker else None

    async def close(self) -> None:
        """Cut every fetch (each records its entry `pending`, to resume at the next start)."""
        tasks = [f.task for f in self._fetches.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    def on_end(self, hook: FetchHook) -> None:
        """Tell `hook` once how each fetch ends (`Store.on_fetched`)."""
        self._hooks.append(hook)

    # -- starting -------------------------------------------------------------------------

    def start(self, request: EntryRequest, resolver: Resolver) -> InFlight:
        """The in-flight fetch of `request`, started if there is none (single flight)."""
        fetch = self._fetches.get(request.request_key)
        if fetch is not None:
            return fetch
        loop = asyncio.get_running_loop()
        resolved: asyncio.Future[str] = loop.create_future()
        task = loop.create_task(
            self._fetch_then_close(request, resolver, resolved),
            name=f"fetch:{request.source}",
            context=contextvars.Context(),  # shared by every caller: it belongs to none
        )
        fetch = InFlight(resolved, task)
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

    async def _fetch_then_close(
        self, request: EntryRequest, resolver: Resolver, resolved: asyncio.Future[str]
    ) -> str:
        ended: FetchEnded | None = None
        try:
            entry_id = await self._fetch(request, resolver, resolved)
            if self._hooks:
                ended = await self._ready(request, entry_id)
            return entry_id
        finally:
            try:
                await resolver.close()
            finally:
                self._tell(ended or FetchEnded(request, _entry_id(resolved)))

    async def _ready(self, request: EntryRequest, entry_id: str) -> FetchEnded | None:
        """What the hooks are told of a fetch that left its entry ready (None if it is gone)."""

        def read(conn: sqlite3.Connection) -> FetchEnded | None:
            entry = index.get_entry(conn, entry_id)
            if entry is None or entry.state != EntryState.READY:
                return None
            return FetchEnded(request, entry_id, entry, tuple(index.entry_files(conn, entry_id)))

        try:
            return await self.parts.db.read(read)
        except Exception as exc:  # the fetch is done: its callers must not see this
            log.error(
                "fetch.hook_failed", source=request.source, action="told not ready", exc_info=exc
            )
            return None

    def _tell(self, ended: FetchEnded) -> None:
        """Tell every hook; one that raises is logged, and neither the fetch nor the other
        hooks notice."""
        for hook in self._hooks:
            try:
                hook(ended)
            except Exception as exc:
                log.error("fetch.hook_failed", source=ended.request.source, exc_info=exc)

    async def _fetch(
        self, request: EntryRequest, resolver: Resolver, resolved: asyncio.Future[str]
    ) -> str:
        started = self.parts.clock.monotonic()
        manifest = await resolver.resolve()
        validate_tree(f.path for f in manifest.files)
        entry_id = entry_id_for(request.request_key, manifest.version)
        await self.parts.deletions.wait(entry_id)
        if await self._already_ready(entry_id, request):
            resolved.set_result(entry_id)
            return entry_id
        await self._begin(entry_id, request, manifest)
        resolved.set_result(entry_id)
        log.info(
            "fetch.started", entry_id=entry_id, source=request.source, files=len(manifest.files)
        )
        await self._fill(entry_id, request, manifest, resolver)
        log.info(
            "fetch.ready",
            entry_id=entry_id,
            source=request.source,
            seconds=round(self.parts.clock.monotonic() - started, 3),
        )
        return entry_id

    async def _already_ready(self, entry_id: str, request: EntryRequest) -> bool:
        """Upstream resolved to an entry that is here: an expired one is valid again (it is
        what upstream serves now), without fetching a byte."""
        parts = self.parts
        existing = await parts.db.read(lambda c: index.get_entry(c, entry_id))
        if existing is None or existing.state != EntryState.READY:
            return False
        now = parts.clock.now()
        expires = parts.expiry.of(existing)
        if expires is not None and expires <= now:
            await parts.db.run(lambda c: index.renew(c, entry_id, now))
            log.info("entry.revalidated", entry_id=entry_id, source=request.source)
        return True

    async def _begin(self, entry_id: str, request: EntryRequest, manifest: Manifest) -> None:
        now = self.parts.clock.now()
        external = manifest.external_size is not None
        await self.parts.db.run(
            lambda c: index.begin_entry(
                c,
                entry_id,
                request,
                manifest.version,
                manifest.details,
                manifest.files,
                now,
                external=external,
            )
        )

    async def _fill(
        self, entry_id: str, request: EntryRequest, manifest: Manifest, resolver: Resolver
    ) -> None:
        """Fill the entry; whatever stops it is recorded in its state before it propagates."""
        fill = EntryFill(
            self.parts,
            self.space,
            self._blobs,
            self.growing,
            self._file_slots,
            entry_id,
            request,
            manifest,
            resolver,
        )
        try:
            missing = await fill.plan()
            self._progress[entry_id] = fill.tracker
            await fill.run(missing)
        except asyncio.CancelledError:
            await asyncio.shield(self.parts.set_state(entry_id, EntryState.PENDING, "interrupted"))
            raise
        except BaseException as exc:
            message = exc.message if isinstance(exc, NosanaCacheError) else repr(exc)
            if isinstance(exc, InsufficientSpace):
                await asyncio.to_thread(self.emergency_room.give_up)  # room to record this
            await asyncio.shield(self.parts.set_state(entry_id, EntryState.FAILED, message))
            self.parts.stats.failures[type(exc).__name__] += 1
            log.warning("fetch.failed", entry_id=entry_id, source=request.source, error=message)
            raise
        finally:
            self._progress.pop(entry_id, None)


def _entry_id(resolved: asyncio.Future[str]) -> str | None:
    """The entry a fetch was filling, if upstream answered before it ended."""
    if not resolved.done() or resolved.cancelled() or resolved.exception() is not None:
        return None
    return resolved.result()
