"""Putting one blob into the site store, read through the store (`Store.open_blob`).

    push(blob)
      ├─ there already, same size (and not to be replaced)   → nothing to send (but a blob
      │  written more than REFRESH_AFTER ago is copied onto itself, server-side, so that a
      │  lifecycle rule counting from its last write keeps it while a new manifest names it)
      ├─ up to SINGLE_PUT bytes                               → one PUT
      └─ larger                                               → a multipart upload, its parts in
         parallel (`site.upload_concurrency` at once, one part in memory each); the upload id is
         in the journal, so a restarted daemon sends only the parts the site store lacks

Whatever way, the file is read once, and its sha256 and chunk digests (for the manifest) are
computed from those very bytes: a blob damaged on this disk is never completed in the site
store (it raises `StoreCorrupted`; `nosana-cache verify` finds it). New objects are written
with `If-None-Match: *`: of two nodes uploading one blob, one completes it and the other's
upload is dropped. A blob to replace (found damaged there) is overwritten.

A blob evicted from the store before its upload began is `BlobGone`: its entry is skipped.
An unfinished multipart upload the site store cannot list (s3rver answers ListParts with 405)
is aborted, as far as the store lets it, and started anew: it can be neither continued nor
left owing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import BinaryIO

from ..errors import NotFound, StoreCorrupted, UpstreamError, UpstreamUnsupported
from ..logs import get_logger
from ..util.clock import Clock
from .bucket import SiteBucket
from .health import SiteCounters
from .journal import Journal, Multipart
from .layout import CHUNK, Layout

log = get_logger(__name__)

SINGLE_PUT = 64 * 1024 * 1024
"""Blobs up to this size go in one PUT."""
MIN_PART = 16 * 1024 * 1024
MAX_PARTS = 10_000
MIB = 1024 * 1024
REFRESH_AFTER = 86400.0
"""A blob a new manifest names, written longer ago than this, is written anew (see the
lifecycle rule in config/site-lifecycle.json: blobs live 3 days from their last write)."""
MAX_COPY = 5 * 1024**3
"""S3 copies an object onto itself in one request up to 5 GiB; larger ones are left to age
(a node that then misses one falls back to upstream and uploads it again)."""
Chunks = tuple[int, tuple[str, ...]]
"""A blob's chunk size and chunk digests (none for a blob of one chunk)."""
BlobOpener = Callable[[str], Awaitable[BinaryIO]]
"""Opens one of the store's blobs by its sha256 (`Store.open_blob`), `NotFound` if gone."""


class BlobGone(Exception):
    """The blob's file left the store (its entries were evicted) before it was read."""


class _Digests:
    """The sha256 of a stream and of each of its `CHUNK`-sized pieces."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.whole = hashlib.sha256()
        self.chunks: list[str] = []
        self._chunk = hashlib.sha256()
        self._filled = 0

    def update(self, data: bytes) -> None:
        self.whole.update(data)
        view = memoryview(data)
        while view:
            take = min(len(view), CHUNK - self._filled)
            self._chunk.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == CHUNK:
                self._close_chunk()

    def _close_chunk(self) -> None:
        self.chunks.append(self._chunk.hexdigest())
        self._chunk, self._filled = hashlib.sha256(), 0

    def finish(self) -> tuple[str, Chunks]:
        if self._filled:
            self._close_chunk()
        chunks = tuple(self.chunks) if self.size > CHUNK else ()
        return self.whole.hexdigest(), (CHUNK, chunks)


class BlobPusher:
    def __init__(
        self,
        bucket: SiteBucket,
        layout: Layout,
        journal: Journal,
        counters: SiteCounters,
        clock: Clock,
        concurrency: int,
        open_blob: BlobOpener,
    ) -> None:
        self.bucket = bucket
        self.layout = layout
        self.journal = journal
        self.counters = counters
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._open_blob = open_blob

    async def push(self, sha256: str, size: int, *, replace: bool) -> Chunks:
        """Make sure the site store holds the blob; its chunk digests."""
        key = self.layout.blob(sha256)
        if not replace:
            there = await self.bucket.head(key)
            if there is not None and there.size == size:
                written = there.last_modified or self.clock.now()
                if written < self.clock.now() - REFRESH_AFTER and size <= MAX_COPY:
                    await self.bucket.touch(key)
                return await self._chunks_of(sha256, size)
        if size <= SINGLE_PUT:
            chunks = await self._put_whole(key, sha256, size, replace=replace)
        else:
            chunks = await self._put_parts(key, sha256, size, replace=replace)
        await self.journal.save_chunks(sha256, *chunks, self.clock.now())
        return chunks

    async def _open(self, sha256: str) -> BinaryIO:
        try:
            return await self._open_blob(sha256)
        except NotFound as exc:
            raise BlobGone(sha256) from exc

    async def _put_whole(self, key: str, sha256: str, size: int, *, replace: bool) -> Chunks:
        async with self._slots:
            blob = await self._open(sha256)
            try:
                data = await asyncio.to_thread(os.pread, blob.fileno(), size, 0)
            finally:
                blob.close()
            digests = _Digests(size)
            await asyncio.to_thread(digests.update, data)
            chunks = _checked(digests, sha256)
            if await self.bucket.put(key, data, if_absent=not replace):
                self._sent(size)
        return chunks

    async def _put_parts(self, key: str, sha256: str, size: int, *, replace: bool) -> Chunks:
        part_size = max(MIN_PART, -(-size // MAX_PARTS // MIB) * MIB)
        blob = await self._open(sha256)  # read to the end even if evicted meanwhile
        try:
            upload, done = await self._upload_for(key, sha256, part_size)
            digests, etags = await self._send_parts(key, blob.fileno(), size, upload, done)
        finally:
            blob.close()
        try:
            chunks = _checked(digests, sha256)
        except StoreCorrupted:
            await self.bucket.abort_upload(key, upload.upload_id)
            await self.journal.end_multipart(sha256)
            raise
        if await self.bucket.finish_upload(key, upload.upload_id, etags, if_absent=not replace):
            self.counters.blobs_uploaded += 1
        await self.journal.end_multipart(sha256)
        return chunks

    async def _send_parts(
        self, key: str, fd: int, size: int, upload: Multipart, done: dict[int, str]
    ) -> tuple[_Digests, dict[int, str]]:
        """Read every part in order (for the digests); send those the upload lacks."""
        etags = dict(done)
        digests = _Digests(size)
        sending: list[asyncio.Task[None]] = []

        async def send(number: int, data: bytes) -> None:
            try:
                etags[number] = await self.bucket.upload_part(key, upload.upload_id, number, data)
                self.counters.bytes_uploaded += len(data)
            finally:
                self._slots.release()

        try:
            for number, offset in enumerate(range(0, size, upload.part_size), start=1):
                await self._slots.acquire()  # held until the part is sent: bounded memory
                try:
                    data = await asyncio.to_thread(os.pread, fd, upload.part_size, offset)
                    await asyncio.to_thread(digests.update, data)
                except BaseException:
                    self._slots.release()
                    raise
                if number in done:
                    self._slots.release()
                    continue
                sending.append(asyncio.ensure_future(send(number, data)))
                await _raise_first_failure(sending)
            await asyncio.gather(*sending)
        except BaseException:
            for task in sending:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)
            raise
        return digests, etags

    async def _upload_for(
        self, key: str, sha256: str, part_size: int
    ) -> tuple[Multipart, dict[int, str]]:
        """The multipart upload to continue (and the parts it holds), else a new one."""
        saved = await self.journal.multipart(sha256)
        if saved is not None and saved.part_size == part_size:
            done = await self._parts_held(key, saved)
            if done is not None:
                log.info("site.upload_resumed", sha256=sha256, parts_done=len(done))
                return saved, done
        upload = Multipart(await self.bucket.start_upload(key), part_size)
        await self.journal.begin_multipart(sha256, upload, self.clock.now())
        return upload, {}

    async def _parts_held(self, key: str, saved: Multipart) -> dict[int, str] | None:
        """The parts an unfinished upload holds; None if it is to be started anew: gone, or
        the site store cannot list its parts (then it is aborted, if the store can)."""
        try:
            return await self.bucket.parts_done(key, saved.upload_id)
        except UpstreamUnsupported as exc:
            log.warning("site.upload_not_resumable", key=key, error=exc.message)
        with contextlib.suppress(UpstreamError):  # best effort: s3rver cannot abort either
            await self.bucket.abort_upload(key, saved.upload_id)
        return None

    async def _chunks_of(self, sha256: str, size: int) -> Chunks:
        """Chunk digests of a blob the site store has: remembered, or hashed from the blob."""
        if size <= CHUNK:
            return CHUNK, ()
        known = await self.journal.chunks(sha256, self.clock.now())
        if known is not None and known[0] == CHUNK:
            return known
        blob = await self._open(sha256)
        try:
            chunks = await asyncio.to_thread(_hash_file, blob, size, sha256)
        finally:
            blob.close()
        await self.journal.save_chunks(sha256, *chunks, self.clock.now())
        return chunks

    def _sent(self, size: int) -> None:
        self.counters.bytes_uploaded += size
        self.counters.blobs_uploaded += 1


async def _raise_first_failure(tasks: list[asyncio.Task[None]]) -> None:
    """Raise the error of a part that already failed, if any (the rest are then cancelled)."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            await task


def _checked(digests: _Digests, sha256: str) -> Chunks:
    actual, chunks = digests.finish()
    if actual != sha256:
        raise StoreCorrupted(
            f"the store's blob {sha256[:12]} does not match its digest (run nosana-cache "
            "verify): not uploaded"
        )
    return chunks


def _hash_file(blob: BinaryIO, size: int, sha256: str) -> Chunks:
    digests = _Digests(size)
    while data := blob.read(CHUNK):
        digests.update(data)
    return _checked(digests, sha256)
