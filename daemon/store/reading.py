"""Reading one file of an entry while it may still be downloading.

    open(request, resolver, file, holder)
      ├─ hit: the entry is ready and fresh → a lease, and the committed blob
      └─ miss: start (or join) the entry's fetch, lease the entry while it downloads, then
           follow the file's blob as it is written (growing.py), or read it once committed

A `FileStream` serves byte ranges as they land and is never ahead of the disk. The temp file is
opened once and read through the same descriptor after the commit (a rename keeps the inode),
so the hand-over to the committed blob needs nothing. A read that reaches the file's last byte
waits for the verification: a file whose digest does not match ends in an error before its end,
so no reader ever gets all of a file that is not the one upstream announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ..errors import NosanaCacheError, StoreError
from . import index
from .fetching import Fetcher, InFlight
from .filling import blob_key
from .growing import Growing
from .models import Entry, EntryRequest, FileSpec, Resolver
from .parts import Parts

READ_CHUNK = 1024 * 1024
SPAN_MOST = 16 * 1024 * 1024
"""At most this much in one span: a reader sends it, then looks again at what has landed."""


@dataclass
class FileStream:
    """One reader's hold on one file: a lease on its entry, and its bytes (committed, or
    `growing`). Close it when done."""

    entry: Entry
    path: str
    size: int
    hit: bool
    parts: Parts = field(repr=False)
    lease_id: int
    blob: str | None = None
    """The committed blob's sha256, once known."""
    growing: Growing | None = None
    """The blob being written, while the file was still downloading when opened."""
    fd: int | None = field(default=None, repr=False)

    def committed_blob(self) -> Path | None:
        """The blob file, when the file was whole in the store when opened (a reader may then
        hand it to the kernel, `sendfile`); None while it is still being written."""
        if self.growing is not None or self.blob is None:
            return None
        return self.parts.paths.blob(self.blob)

    async def chunks(self, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """The bytes of `[start, end)` in order, each as soon as it is on disk."""
        spans = self.spans(start, end, READ_CHUNK)
        try:
            async for fd, offset, count in spans:
                data = await asyncio.to_thread(os.pread, fd, count, offset)
                if len(data) != count:
                    raise self.short(offset + len(data))
                yield data
        finally:
            await spans.aclose()

    async def spans(
        self, start: int, end: int, most: int = SPAN_MOST
    ) -> AsyncGenerator[tuple[int, int, int], None]:
        """`(fd, offset, count)` spans of `[start, end)` in order, each once its bytes are on
        disk (the one that reaches the file's end once the blob is verified): a reader may
        hand them to the kernel (`sendfile`) instead of copying them through Python."""
        offset = start
        while offset < end:
            count = min(await self._available(offset), end - offset, most)
            if offset + count >= self.size and self.growing is not None:
                await self._verified()
            yield await self._open(), offset, count
            offset += count

    def short(self, at: int) -> StoreError:
        """The error for a blob file that ends early, at byte `at`."""
        return StoreError(f"{self.path}: the blob ends at byte {at}")

    async def _available(self, offset: int) -> int:
        growing = self.growing
        if growing is None:
            return self.size - offset
        count = await growing.wait_for(offset)
        if count:
            return count
        await self._verified()  # ended without this byte: raises the download's error
        return self.size - offset

    async def _verified(self) -> None:
        """Wait for the blob's digest check; its error if the download failed."""
        assert self.growing is not None
        await self.growing.wait_ended()
        error = self.growing.error
        if isinstance(error, NosanaCacheError):
            raise error  # as every waiter of a shared fetch gets it (upstream's, or space)
        if error is not None:
            raise StoreError(f"{self.path}: its download failed: {error!r}") from error

    async def _open(self) -> int:
        if self.fd is not None:
            return self.fd
        blobs = self.parts.paths
        if self.growing is not None and self.blob is None:
            try:
                self.fd = await asyncio.to_thread(os.open, self.growing.tmp_path, os.O_RDONLY)
                return self.fd
            except FileNotFoundError:
                await self._verified()  # gone: committed (renamed) or discarded
                self.blob = self.growing.sha256
        assert self.blob is not None
        self.fd = await asyncio.to_thread(os.open, blobs.blob(self.blob), os.O_RDONLY)
        return self.fd

    async def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)
        await asyncio.shield(
            self.parts.db.run(partial(index.release_lease, lease_id=self.lease_id))
        )


class Reading:
    """Opens files of entries for readers; the store hands out its `open`."""

    def __init__(self, parts: Parts, fetcher: Fetcher) -> None:
        self.parts = parts
        self.fetcher = fetcher

    async def open(
        self, request: EntryRequest, resolver: Resolver, spec: FileSpec, holder: str
    ) -> FileStream:
        """`spec`, one file of `request`'s entry, to read now: a hit, or the fetch it needs
        (started or joined), followed as it lands."""
        parts, now = self.parts, self.parts.clock.now()
        hit = await parts.db.run(
            partial(
                index.take_hit,
                request_key=request.request_key,
                holder=holder,
                now=now,
                expiry=parts.expiry,
            )
        )
        if hit is not None:
            parts.stats.hits[request.type] += 1
            return await self._committed(
                FileStream(hit[0], spec.path, spec.size, True, parts, hit[1])
            )
        parts.stats.misses[request.type] += 1
        return await self._miss(request, resolver, spec, holder)

    async def _miss(
        self, request: EntryRequest, resolver: Resolver, spec: FileSpec, holder: str
    ) -> FileStream:
        parts, now = self.parts, self.parts.clock.now()
        fetch = self.fetcher.start(request, resolver)
        entry_id = await asyncio.shield(fetch.resolved)
        held = await parts.db.run(
            partial(index.hold_entry, entry_id=entry_id, holder=holder, now=now)
        )
        entry = await parts.db.read(lambda c: index.get_entry(c, entry_id))
        if held is None or entry is None:  # failed or deleted between resolving and leasing
            await asyncio.shield(fetch.task)
            raise StoreError(f"{request.source}: the entry went away while it was opened")
        stream = FileStream(entry, spec.path, spec.size, False, parts, held)
        try:
            return await self._follow(stream, fetch, blob_key(entry_id, spec))
        except BaseException:
            await stream.close()
            raise

    async def _follow(self, stream: FileStream, fetch: InFlight, key: str) -> FileStream:
        """The blob being written for `key`, or the committed one once the fetch is done."""
        while True:
            growing = self.fetcher.growing.get(key)
            if growing is not None:
                stream.growing = growing
                return stream
            if fetch.task.done():
                fetch.task.result()  # the fetch's error, if it failed
                return await self._committed(stream)
            started = asyncio.ensure_future(self.fetcher.growing.started(key))
            try:
                await asyncio.wait({started, fetch.task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                started.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await started

    async def _committed(self, stream: FileStream) -> FileStream:
        entry_id, path = stream.entry.id, stream.path
        sha256 = await self.parts.db.read(lambda c: index.file_blob(c, entry_id, path))
        if sha256 is None:
            await stream.close()
            raise StoreError(f"{stream.entry.source}: {path} has no blob in entry {entry_id}")
        stream.blob = sha256
        return stream
