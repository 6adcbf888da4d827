"""Blobs still being written, readable as their bytes land.

A client of the Hub endpoint asking for a file that is downloading should get its first bytes
at once, not after the whole file. The download writes through an `Ingest` (positional writes
from parallel ranged parts, blobs.py); `GrowingBlobs` lists the ingests in flight by blob key,
and each `Growing` says which bytes are written, wakes its readers on every write, and tells
how the blob ended: committed (verified and renamed into `blobs/`, the same inode as the temp
file, so an open descriptor reads on) or failed.

Everything here runs on the event loop: a write is recorded in the ingest's ranges before its
`write()` returns, and only then are readers woken, so no reader sees a byte before it is on
disk.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .blobs import Ingest


class Growing:
    """One blob on its way in: its temp file, which of its bytes are written, how it ended."""

    def __init__(self, ingest: Ingest) -> None:
        self.size = ingest.size
        self.tmp_path: Path = ingest.tmp_path
        self._ingest = ingest
        self._event = asyncio.Event()
        self.sha256: str | None = None
        """Set once the blob is verified and committed."""
        self.error: BaseException | None = None
        """Set if the download failed: its bytes never become a blob."""

    @property
    def ended(self) -> bool:
        return self.sha256 is not None or self.error is not None

    def available(self, offset: int) -> int:
        """How many bytes from `offset` on are written without a gap (0 if `offset` is not)."""
        for start, end in self._ingest.written():
            if start <= offset < end:
                return end - offset
        return 0

    async def wait_for(self, offset: int) -> int:
        """Bytes written from `offset` on, waiting for the first of them if need be; 0 only
        once the download has ended without writing `offset`."""
        while True:
            event = self._event
            count = self.available(offset)
            if count or self.ended:
                return count
            await event.wait()

    async def wait_ended(self) -> None:
        while not self.ended:
            await self._event.wait()

    def wrote(self) -> None:
        self._wake()

    def committed(self, sha256: str) -> None:
        self.sha256 = sha256
        self._wake()

    def failed(self, error: BaseException) -> None:
        self.error = error
        self._wake()

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()


class GrowingSink:
    """The `BlobSink` a resolver writes into: the ingest, with its readers woken after each
    write."""

    def __init__(self, ingest: Ingest, growing: Growing) -> None:
        self._ingest = ingest
        self._growing = growing

    @property
    def size(self) -> int:
        return self._ingest.size

    def missing(self) -> list[tuple[int, int]]:
        return self._ingest.missing()

    async def write(self, offset: int, data: bytes) -> None:
        await self._ingest.write(offset, data)
        self._growing.wrote()


class GrowingBlobs:
    """The blobs being written now, by blob key; a reader may wait for one to start."""

    def __init__(self) -> None:
        self._growing: dict[str, Growing] = {}
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    def get(self, key: str) -> Growing | None:
        return self._growing.get(key)

    def begin(self, key: str, ingest: Ingest) -> Growing:
        growing = self._growing[key] = Growing(ingest)
        for waiter in self._waiting.pop(key, set()):
            if not waiter.done():
                waiter.set_result(None)
        return growing

    def end(self, key: str, growing: Growing) -> None:
        if self._growing.get(key) is growing:
            del self._growing[key]

    async def started(self, key: str) -> None:
        """Return once a blob of `key` is being written (at once if it is now)."""
        if key in self._growing:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiting.setdefault(key, set())
        waiters.add(waiter)
        try:
            await waiter
        finally:
            waiters.discard(waiter)
            if not waiters and self._waiting.get(key) is waiters:
                del self._waiting[key]
