"""Keeping the store honest: crash recovery, the ttl sweep, garbage collection, scrubbing.

- `recover` runs at every start, before anything is served: it finishes interrupted deletions,
  marks interrupted fetches `pending` (the service resumes them), removes half-built views and
  temp files nobody can resume, and reconciles blob files with the index both ways.
- `sweep` deletes expired entries that no pin and no lease holds, then collects garbage.
- `gc` deletes blobs that no entry references: row and file in one database-thread step, so a
  concurrent fetch either sees the blob and links it, or does not see it and fetches it.
- `verify` re-hashes every blob; a corrupt or missing one is deleted and the entries using it
  are marked failed, so the next acquire fetches them again.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..logs import get_logger
from . import blob_index, index
from .blobs import BlobPaths, remove_blob_file
from .digests import hash_file, is_sha256
from .fetching import Fetcher
from .models import Entry, EntryState
from .parts import Parts
from .views import Views, remove_tree

log = get_logger(__name__)

GC_BATCH = 1000
CLEAN = "clean_shutdown"
SYNCED_BEFORE = "synced_before"
CHECKPOINT_EVERY = 30.0
"""Seconds between checkpoints: at most this much download is re-hashed after a crash."""
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by nosana-cache.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


@dataclass(frozen=True)
class SweepReport:
    entries: int
    blobs: int
    bytes_freed: int


@dataclass(frozen=True)
class VerifyReport:
    blobs_checked: int
    bytes_checked: int
    corrupt: list[str]
    missing: list[str]
    entries_failed: list[str]


def prepare_folders(root: Path, paths: BlobPaths, views: Views) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tag = root / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(CACHEDIR_TAG)
    paths.ensure()
    views.ensure()


class Maintenance:
    """Recovery, sweeps, garbage collection and scrubbing over the store's parts.

    `evict` is the store's (it runs the eviction hooks); `fetcher` says what is in flight,
    which a sweep must leave alone.
    """

    def __init__(
        self, parts: Parts, fetcher: Fetcher, evict: Callable[[Entry, str], Awaitable[bool]]
    ) -> None:
        self.parts = parts
        self.fetcher = fetcher
        self.evict = evict

    async def _entries(self, states: list[EntryState]) -> list[Entry]:
        return await self.parts.db.read(lambda c: index.list_entries(c, states))

    async def _get(self, entry_id: str) -> Entry | None:
        return await self.parts.db.read(lambda c: index.get_entry(c, entry_id))

    async def recover(self) -> int:
        """Bring the store to a consistent state after whatever the last run ended with.
        Returns how many blobs on disk the index did not know (and were removed)."""
        for entry in await self._entries([EntryState.DELETING]):
            await asyncio.to_thread(self.parts.views.remove, entry.id)
            await self.parts.db.run(partial(index.delete_entry, entry_id=entry.id))
        interrupted = await self._entries([EntryState.DOWNLOADING])
        for entry in interrupted:
            await self.parts.db.run(
                partial(
                    index.set_state,
                    entry_id=entry.id,
                    state=EntryState.PENDING,
                    error="interrupted",
                )
            )
        ready = {e.id for e in await self._entries([EntryState.READY]) if not e.external}
        removed_views = await asyncio.to_thread(_clean_views, self.parts.views, ready)
        missing_views = [e for e in ready if not self.parts.views.path(e).is_dir()]
        for entry_id in missing_views:
            await self.parts.db.run(
                partial(
                    index.set_state,
                    entry_id=entry_id,
                    state=EntryState.FAILED,
                    error="view missing",
                )
            )
        downloads = await self.parts.db.read(blob_index.all_downloads)
        known_tmp = {row["tmp_name"] for row in downloads}
        removed_tmp, gone = await asyncio.to_thread(_clean_tmp, self.parts.paths, known_tmp)
        for row in downloads:
            if row["tmp_name"] in gone:
                await self.parts.db.run(partial(blob_index.delete_download, key=row["key"]))
        orphans, lost = await self._reconcile_blobs()
        rehashed, damaged = await self._check_unsynced()
        log.info(
            "store.recovered",
            unsynced_blobs_checked=rehashed,
            unsynced_blobs_damaged=damaged,
            interrupted=len(interrupted),
            views_removed=removed_views,
            views_missing=len(missing_views),
            tmp_removed=removed_tmp,
            orphan_blobs=orphans,
            lost_blobs=lost,
        )
        return orphans

    async def _check_unsynced(self) -> tuple[int, int]:
        """After an unclean stop, re-hash what was written since the last checkpoint.

        A power cut can leave a blob that was renamed into place before its bytes reached the
        disk; size checks do not see that, a hash does. A clean stop checkpoints first, so this
        only costs after a crash, and only for the last seconds of downloads.
        """
        clean = await self.parts.db.read(lambda c: index.get_meta(c, CLEAN))
        await self.parts.db.run(lambda c: index.set_meta(c, CLEAN, "0"))
        if clean == "1":
            return 0, 0
        synced = await self.parts.db.read(lambda c: index.get_meta(c, SYNCED_BEFORE))
        since = float(synced) if synced else 0.0
        recent = await self.parts.db.read(partial(blob_index.blobs_written_since, since=since))
        damaged = 0
        for digest, _size in recent:
            try:
                intact = await asyncio.to_thread(hash_file, self.parts.paths.blob(digest)) == digest
            except FileNotFoundError:
                intact = False
            if not intact:
                damaged += 1
                reason = f"blob {digest} damaged by an unclean stop"
                failed = await self.parts.db.run(
                    partial(blob_index.forget_blob, sha256=digest, reason=reason)
                )
                await asyncio.to_thread(remove_blob_file, self.parts.paths, digest)
                for entry_id in failed:
                    await asyncio.to_thread(self.parts.views.remove, entry_id)
        return len(recent), damaged

    async def _reconcile_blobs(self) -> tuple[int, int]:
        """Blob files without rows are deleted; rows without files (or with a file of the wrong
        size, as a power cut can leave a file that was never synced) fail the entries using them."""
        on_disk = await asyncio.to_thread(_blob_files, self.parts.paths)
        rows = dict(await self.parts.db.read(blob_index.all_blobs))
        orphans = [d for d in on_disk if d not in rows]
        for digest in orphans:
            await asyncio.to_thread(remove_blob_file, self.parts.paths, digest)
        lost = [d for d, size in rows.items() if on_disk.get(d) != size]
        for digest in lost:
            reason = f"blob {digest} missing from disk or cut short"
            failed = await self.parts.db.run(
                partial(blob_index.forget_blob, sha256=digest, reason=reason)
            )
            await asyncio.to_thread(remove_blob_file, self.parts.paths, digest)
            for entry_id in failed:
                await asyncio.to_thread(self.parts.views.remove, entry_id)
        return len(orphans), len(lost)

    async def gc(self) -> int:
        """Delete every blob no entry references; returns how many went.

        Only the blobs that may have lost their last reference since the last collection are
        looked at (the index keeps them, see `index._schema_v2`), in batches, so the cost follows
        what changed, not the size of the store, and other index work gets a turn in between.
        """
        paths = self.parts.paths

        def collect(conn: sqlite3.Connection) -> tuple[int, int]:
            looked_at, digests = blob_index.take_gc_candidates(conn, GC_BATCH)
            blob_index.delete_blob_rows(conn, digests)
            for digest in digests:
                remove_blob_file(paths, digest)
            return looked_at, len(digests)

        total = 0
        while True:
            looked_at, removed = await self.parts.db.run(collect)
            total += removed
            if looked_at < GC_BATCH:
                break
        if total:
            log.info("store.gc", blobs=total)
        return total

    async def sweep(self) -> SweepReport:
        """Expired, unheld entries go (and failed ones older than the ttl); then their blobs."""
        now = self.parts.clock.now()
        before, _ = await self.parts.db.read(blob_index.usage)
        victims = await self.parts.db.read(
            lambda c: index.expired_unheld(c, now, self.parts.expiry)
        )
        stale_failures = [
            e
            for e in await self._entries([EntryState.FAILED, EntryState.PENDING])
            if e.created_at + self.parts.expiry.ttl <= now
            and not e.pinned
            and not e.in_use
            and not self.fetcher.is_fetching(e.request_key)
        ]
        evicted = 0
        for entry in [*victims, *stale_failures]:
            try:
                if await self.evict(entry, "expired"):
                    evicted += 1
            except Exception as exc:
                log.warning("entry.evict_failed", entry_id=entry.id, error=str(exc))
        await self._drop_stale_downloads(now)
        blobs = await self.gc()
        after, _ = await self.parts.db.read(blob_index.usage)
        return SweepReport(entries=evicted, blobs=blobs, bytes_freed=before - after)

    async def _drop_stale_downloads(self, now: float) -> None:
        """A resumable temp file nobody came back for within a ttl is not worth its space."""
        for row in await self.parts.db.read(blob_index.all_downloads):
            if row["updated_at"] + self.parts.expiry.ttl <= now and not self.fetcher.is_downloading(
                row["key"]
            ):
                await self.parts.db.run(partial(blob_index.delete_download, key=row["key"]))
                (self.parts.paths.tmp / row["tmp_name"]).unlink(missing_ok=True)

    async def verify(self) -> VerifyReport:
        """Re-hash every blob; delete corrupt or missing ones and fail the entries using them."""
        blobs = await self.parts.db.read(blob_index.all_blobs)
        corrupt: list[str] = []
        missing: list[str] = []
        checked_bytes = 0
        for digest, size in blobs:
            path = self.parts.paths.blob(digest)
            try:
                actual = await asyncio.to_thread(hash_file, path)
            except FileNotFoundError:
                missing.append(digest)
                continue
            checked_bytes += size
            if actual != digest:
                corrupt.append(digest)
        failed: list[str] = []
        for digest in corrupt + missing:
            reason = f"blob {digest} {'corrupt' if digest in corrupt else 'missing'} (verify)"
            entries = await self.parts.db.run(
                partial(blob_index.forget_blob, sha256=digest, reason=reason)
            )
            await asyncio.to_thread(remove_blob_file, self.parts.paths, digest)
            failed.extend(entries)
        for entry_id in set(failed):
            entry = await self._get(entry_id)
            if entry is not None and not entry.in_use:
                await asyncio.to_thread(self.parts.views.remove, entry_id)
        if corrupt or missing:
            log.warning(
                "store.verify_found_damage", corrupt=corrupt, missing=missing, entries=failed
            )
        return VerifyReport(len(blobs), checked_bytes, corrupt, missing, sorted(set(failed)))


def _clean_views(views: Views, ready: set[str]) -> int:
    removed = 0
    for name in views.names():
        if name not in ready:
            remove_tree(views.root / name)
            removed += 1
    return removed


def _clean_tmp(paths: BlobPaths, known: set[str]) -> tuple[int, set[str]]:
    """Delete temp files no download record can resume; name records whose file is gone."""
    present = set(os.listdir(paths.tmp)) if paths.tmp.exists() else set()
    removed = 0
    for name in present - known:
        try:
            (paths.tmp / name).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed, known - present


def _blob_files(paths: BlobPaths) -> dict[str, int]:
    """Every blob file on disk with its size; stray files in the blob tree are removed."""
    found: dict[str, int] = {}
    if not paths.blobs.exists():
        return found
    for prefix in os.scandir(paths.blobs):
        if not prefix.is_dir():
            continue
        for item in os.scandir(prefix.path):
            digest = prefix.name + item.name
            if is_sha256(digest):
                found[digest] = item.stat().st_size
            else:
                os.unlink(item.path)
    return found
