"""Filling one entry: link the blobs already here, fetch the others once, build the view.

    plan: link every file whose blob is here; what is left is what to download
    run:  reserve its bytes → download each missing blob (joining another entry's download of
          the same blob) → build the view → mark the entry ready

Each blob is streamed into a temp file (or memory, when small) that checks every digest
upstream announced, then committed: renamed into `blobs/` and recorded with its file link in
one index transaction. A large download records how far it got, so a killed daemon resumes it.
While a temp file is being written it is listed in `GrowingBlobs` (growing.py), so a reader can
stream its bytes as they land.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..errors import InsufficientSpace, StoreError, UpstreamIntegrityError
from ..logs import get_logger
from ..util.aiotasks import all_or_nothing
from . import blob_index, index
from .blobs import Ingest, MemoryIngest, commit_blob, write_small_blob
from .growing import GrowingBlobs, GrowingSink
from .models import EntryRequest, FileSpec, Manifest, Resolver
from .parts import Parts
from .space import Reservation, SpaceKeeper

log = get_logger(__name__)

RESUMABLE_SIZE = 8 * 1024 * 1024
"""Files at least this large keep their temp file across failures and restarts."""
SMALL_BLOB = 512 * 1024
"""Files up to this size are gathered in memory and written without a temp file of their own."""
SAVE_EVERY = 2.0
"""Seconds between records of how far a large download has got."""


@dataclass
class Tracker:
    """Progress of one entry's fetch."""

    total: int = 0
    done: int = 0
    kind: str = ""  # the entry's type, for per-type byte counts

    def count(self, n: int) -> None:
        self.done += n


class BlobFlights:
    """Blob downloads in flight, by blob key: a second entry needing the same blob waits for
    the first download instead of starting its own."""

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[str]] = {}

    def get(self, key: str) -> asyncio.Future[str] | None:
        return self._flights.get(key)

    def is_downloading(self, key: str) -> bool:
        return key in self._flights

    def begin(self, key: str) -> asyncio.Future[str]:
        flight: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        return flight

    def end(self, key: str) -> None:
        self._flights.pop(key, None)


@dataclass
class EntryFill:
    """One entry's files, fetched into blobs. Made by the fetcher, used once."""

    parts: Parts
    space: SpaceKeeper
    blobs: BlobFlights
    growing: GrowingBlobs
    file_slots: asyncio.Semaphore
    entry_id: str
    request: EntryRequest
    manifest: Manifest
    resolver: Resolver
    tracker: Tracker = field(default_factory=Tracker)
    reservation: Reservation | None = None

    def __post_init__(self) -> None:
        self.tracker.kind = self.request.type

    async def plan(self) -> list[FileSpec]:
        """Link every file whose blob is here already; the files still to download."""
        entry_id, files = self.entry_id, self.manifest.files
        missing = await self.parts.db.run(lambda c: _link_present(c, entry_id, files))
        self.tracker.total = sum({blob_key(entry_id, spec): spec.size for spec in missing}.values())
        return missing

    async def run(self, missing: list[FileSpec]) -> None:
        """Download `missing` within one space reservation, then build the view: ready."""
        parts, entry_id = self.parts, self.entry_id
        async with self.space.reserve(self.tracker.total, self.request.source) as reservation:
            self.reservation = reservation
            await all_or_nothing([self._file(spec) for spec in missing])
        if self.manifest.files:
            files = await parts.db.read(lambda c: index.entry_files(c, entry_id))
            # A file without a blob here is left out, and `mark_ready` refuses the entry.
            links = [(f.path, parts.paths.blob(f.sha256), f.executable) for f in files if f.sha256]
            await asyncio.to_thread(parts.views.build, entry_id, links)
        now = parts.clock.now()
        external_size = self.manifest.external_size
        ok = await parts.db.run(lambda c: index.mark_ready(c, entry_id, now, external_size))
        if not ok:
            raise StoreError(
                f"{self.request.source}: a blob went missing while the entry was built"
            )

    async def _file(self, spec: FileSpec) -> None:
        """Get the blob for one file (joining another entry's download of it) and link it."""
        key = blob_key(self.entry_id, spec)
        async with self.file_slots:
            for _attempt in range(3):
                shared = self.blobs.get(key)
                if shared is None:
                    await self._download(key, spec)
                    return
                try:
                    sha256 = await asyncio.shield(shared)
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        raise
                    continue  # the other download was cancelled, not us: take it over
                linked = await self.parts.db.run(
                    partial(index.link_file, entry_id=self.entry_id, path=spec.path, sha256=sha256)
                )
                if linked:
                    self.tracker.done += spec.size
                    return
        raise StoreError(f"{spec.path}: could not keep hold of its blob")

    async def _download(self, key: str, spec: FileSpec) -> None:
        """Download a blob others may wait for: they get its digest, or its error."""
        shared = self.blobs.begin(key)
        try:
            if spec.size <= SMALL_BLOB:
                sha256 = await self._ingest_small(spec)
            else:
                sha256 = await self._ingest(key, spec)
            assert self.reservation is not None
            self.reservation.committed(spec.size)
            shared.set_result(sha256)
        except asyncio.CancelledError:
            shared.cancel()
            raise
        except BaseException as exc:
            shared.set_exception(exc)
            shared.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            self.blobs.end(key)

    async def _ingest(self, key: str, spec: FileSpec) -> str:
        """Stream one file into a temp file that readers may follow (growing.py), then verify
        and commit it."""
        resumable = spec.size >= RESUMABLE_SIZE and spec.data is None
        db = self.parts.db
        previous = await db.read(lambda c: blob_index.get_download(c, key)) if resumable else None
        ingest = self._open_ingest(spec, previous)
        growing = self.growing.begin(key, ingest)
        try:
            sink = GrowingSink(ingest, growing)
            sha256 = await self._write(key, spec, ingest, sink, resumable=resumable)
        except BaseException as exc:
            growing.failed(exc)
            raise
        else:
            growing.committed(sha256)
        finally:
            self.growing.end(key, growing)
        self.parts.stats.bytes_fetched[self.tracker.kind] += spec.size
        return sha256

    async def _write(
        self, key: str, spec: FileSpec, ingest: Ingest, sink: GrowingSink, *, resumable: bool
    ) -> str:
        """Fetch into the temp file, verify, then commit blob and link in one step."""
        db = self.parts.db
        saver = None
        if resumable:
            saver = asyncio.get_running_loop().create_task(self._save_progress(key, ingest))
        try:
            if spec.data is not None:
                await sink.write(0, spec.data)
            else:
                await self.resolver.fetch(spec, sink)
            sha256 = await ingest.finish()
        except BaseException as exc:
            # A full disk is not resumed: the half file would hold on to what little is left.
            keep = resumable and not isinstance(exc, UpstreamIntegrityError | InsufficientSpace)
            if keep:
                ingest.close()
                await asyncio.shield(self._record_download(key, ingest))
            else:
                ingest.discard()
                await asyncio.shield(db.run(lambda c: blob_index.delete_download(c, key)))
            raise
        finally:
            if saver is not None:
                saver.cancel()
        paths, now = self.parts.paths, self.parts.clock.now()

        def commit(conn: Any) -> None:
            if blob_index.has_blob(conn, sha256):
                ingest.discard()
            else:
                commit_blob(paths, ingest.tmp_path, sha256)
            self._record_blob(conn, spec, sha256, now)
            blob_index.delete_download(conn, key)

        # Shielded: once verified, the blob is committed even if this fetch is cancelled,
        # else its temp file would be orphaned until the next start.
        await asyncio.shield(db.run(commit))
        return sha256

    async def _ingest_small(self, spec: FileSpec) -> str:
        sink = MemoryIngest(spec.expected, name=spec.path, on_bytes=self.tracker.count)
        if spec.data is not None:
            await sink.write(0, spec.data)
        else:
            await self.resolver.fetch(spec, sink)
        sha256, data = sink.finish()
        paths, now = self.parts.paths, self.parts.clock.now()

        def commit(conn: Any) -> None:
            if not blob_index.has_blob(conn, sha256):
                write_small_blob(paths, sha256, data)
            self._record_blob(conn, spec, sha256, now)

        await asyncio.shield(self.parts.db.run(commit))
        self.parts.stats.bytes_fetched[self.tracker.kind] += spec.size
        return sha256

    def _record_blob(self, conn: Any, spec: FileSpec, sha256: str, now: float) -> None:
        """On the index thread, with the blob in place: its row, its alias, the file's link."""
        aliases = [spec.alias] if spec.alias else []
        blob_index.add_blob(conn, sha256, spec.size, now, aliases)
        index.link_file(conn, self.entry_id, spec.path, sha256)

    def _open_ingest(self, spec: FileSpec, previous: Any) -> Ingest:
        """A temp file for `spec`: the one a previous attempt left, if it can be resumed."""
        paths, count = self.parts.paths, self.tracker.count
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
                resumed = sum(e - s for s, e in written)
                self.tracker.done += resumed
                log.info("fetch.resuming", file=spec.path, bytes=resumed)
                return ingest
        return Ingest(paths, spec.expected, name=spec.path, on_bytes=count)

    async def _record_download(self, key: str, ingest: Ingest) -> None:
        now = self.parts.clock.now()
        ranges = ingest.written()
        await self.parts.db.run(
            lambda c: blob_index.save_download(
                c, key, ingest.tmp_path.name, ingest.size, ranges, now
            )
        )

    async def _save_progress(self, key: str, ingest: Ingest) -> None:
        """Remember what a large download has written, so a killed daemon resumes it."""
        while True:
            await self._record_download(key, ingest)
            await asyncio.sleep(SAVE_EVERY)


def blob_key(entry_id: str, spec: FileSpec) -> str:
    """What identifies a blob before its bytes are seen: its sha256, else its upstream alias."""
    if spec.expected.sha256:
        return f"sha256:{spec.expected.sha256}"
    if spec.alias:
        return f"alias:{spec.alias}"
    return f"file:{entry_id}:{spec.path}"


def _link_present(conn: Any, entry_id: str, files: Sequence[FileSpec]) -> list[FileSpec]:
    """Link every file whose blob is already here; return the ones still to fetch."""
    missing = []
    for spec in files:
        sha256 = spec.expected.sha256
        if sha256 is None and spec.alias:
            sha256 = blob_index.blob_for_alias(conn, spec.alias, spec.size)
        if sha256 is None or not index.link_file(conn, entry_id, spec.path, sha256):
            missing.append(spec)
    return missing
