"""Uploads in the background: what became ready here and the site store lacks, never a job's wait.

    owe(entry)   → the journal (durable: a restarted daemon finishes what it owed)
    the worker, one entry at a time (entries other nodes wait for first):
      still ready here?  no → dropped (evicted or failed: nothing to share)
      each blob the site store lacks, or holds damaged, read through the store (open_blob)
      then the manifest, last: a manifest never names a missing blob
      then the claim on the request is released (herd.py)
    the site store failing → the entry stays owed and is tried again after a pause (the one
    retry policy, on the injected clock); refused (not unavailable) MAX_ATTEMPTS times, it is
    given up

Uploading reads blobs without holding the entry: an entry evicted meanwhile is skipped (its
blob gone), or finished from the open file, and its pins and leases are the store's alone. The
journal may hold an entry for long (the site store away, a restart), so its turn begins by
asking the store whether it is still ready, and what its files are.
"""

from __future__ import annotations

import asyncio

from ..errors import NotFound, StoreCorrupted, UpstreamError, UpstreamUnavailable
from ..logs import get_logger
from ..store import EntryDetails, EntryState, Store, StoredFile
from ..util.aiotasks import TaskSet, all_or_nothing
from ..util.clock import Clock
from ..util.retry import RetryPolicy
from .health import SiteCounters, SiteHealth
from .herd import Herd
from .journal import Journal, Upload
from .layout import SiteFile, SiteManifest
from .manifests import Manifests
from .pushing import BlobGone, BlobPusher, Chunks

log = get_logger(__name__)

MAX_ATTEMPTS = 20
"""Refusals of one entry before it is given up (the site store being away counts for none)."""
BLOBS_AT_ONCE = 16
"""Blobs of one entry checked or sent at once (parts are bounded by the pusher)."""
PAUSES = RetryPolicy(first_delay=2.0, max_delay=300.0)


class _Skip(Exception):
    """The entry is not to be uploaded any more (gone, failed, damaged here)."""


class Uploader:
    def __init__(
        self,
        store: Store,
        journal: Journal,
        manifests: Manifests,
        herd: Herd,
        pusher: BlobPusher,
        counters: SiteCounters,
        health: SiteHealth,
        clock: Clock,
    ) -> None:
        self.store = store
        self.journal = journal
        self.manifests = manifests
        self.herd = herd
        self.pusher = pusher
        self.counters = counters
        self.health = health
        self.clock = clock
        self._wake = asyncio.Event()
        self._tasks = TaskSet("site-uploads")

    def start(self) -> None:
        self._wake.set()  # whatever the journal owes from the last run
        self._tasks.spawn(self._run(), "worker")

    async def close(self) -> None:
        await self._tasks.close()

    async def owe(self, upload: Upload) -> None:
        await self.journal.add(upload, self.clock.now())
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            upload = await self.journal.next()
            if upload is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._upload(upload)
            except (UpstreamError, TimeoutError) as exc:
                failures += 1
                await self._failed(upload, exc)
                await self.clock.sleep(PAUSES.delay(failures, exc))
                continue
            except (_Skip, BlobGone, StoreCorrupted, NotFound) as exc:
                log.info("site.upload_skipped", entry_id=upload.entry_id, reason=str(exc))
                await self._release(upload)
            except Exception as exc:  # a surprise must not end every later upload
                log.error("site.upload_failed", entry_id=upload.entry_id, exc_info=exc)
                failures += 1
                await self._failed(upload, exc)
                await self.clock.sleep(PAUSES.delay(failures, exc))
                continue
            failures = 0
            await self.journal.done(upload.entry_id)

    async def _failed(self, upload: Upload, exc: BaseException) -> None:
        self.health.failed(exc, f"upload of entry {upload.entry_id}")
        if isinstance(exc, UpstreamUnavailable | TimeoutError):
            return  # the site store is away: the entry is not to blame
        if upload.attempts + 1 < MAX_ATTEMPTS:
            await self.journal.failed(upload.entry_id)
            return
        log.error("site.upload_abandoned", entry_id=upload.entry_id, attempts=MAX_ATTEMPTS)
        await self._release(upload)
        await self.journal.done(upload.entry_id)

    async def _release(self, upload: Upload) -> None:
        if upload.leading:
            await self.herd.release(upload.request_key)

    async def _upload(self, upload: Upload) -> None:
        entry = await self.store.get(upload.entry_id)
        if entry.state != EntryState.READY or entry.downloaded_at is None:
            raise _Skip(f"entry is {entry.state}")
        files = await self.store.files(entry.id)
        sizes = {str(f.sha256): f.size for f in files}  # a ready entry's files all have one
        chunks: dict[str, Chunks] = {}
        slots = asyncio.Semaphore(BLOBS_AT_ONCE)

        async def push(sha256: str) -> None:
            async with slots:
                replace = sha256 in upload.repairs
                chunks[sha256] = await self.pusher.push(sha256, sizes[sha256], replace=replace)

        await all_or_nothing([push(sha256) for sha256 in sizes])
        self.health.ok()
        if upload.manifest:
            manifest = SiteManifest(
                identity=entry.request,
                type=entry.type,
                source=entry.source,
                version=entry.version or "",
                entry_id=entry.id,
                first_downloaded_at=entry.downloaded_at,
                files=tuple(_file(f, chunks[str(f.sha256)]) for f in files),
                details=_own(entry.details),
                written_by=self.journal.node,
            )
            if await self.manifests.write(upload.request_key, manifest):
                self.counters.manifests_uploaded += 1
        log.info("site.uploaded", entry_id=entry.id, source=entry.source, blobs=len(sizes))
        await self._release(upload)


def _file(file: StoredFile, chunks: Chunks) -> SiteFile:
    chunk_size, digests = chunks
    return SiteFile(
        path=file.path,
        size=file.size,
        sha256=str(file.sha256),
        executable=file.executable,
        chunk_size=chunk_size,
        chunks=digests,
    )


def _own(details: EntryDetails) -> EntryDetails:
    """The entry's details but where this node got it from: a node that reads the manifest
    says where it got it itself."""
    own = details.copy()
    own.pop("site_store", None)
    return own
