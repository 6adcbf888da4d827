"""A sink for the downloader's tests: what was written where, and each byte written once."""

from __future__ import annotations

import asyncio


class RecordingSink:
    """A `BlobSink` that keeps the bytes and the range of every write, and refuses a write
    over bytes already written."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data = bytearray(size)
        self.writes: list[tuple[int, int]] = []
        self._wrote = asyncio.Event()

    def missing(self) -> list[tuple[int, int]]:
        return [(0, self.size)]

    async def write(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        again = [(s, e) for s, e in self.writes if s < end and offset < e]
        assert not again, f"[{offset}, {end}) written again: {again}"
        self.writes.append((offset, end))
        self.data[offset:end] = data
        self._wrote.set()

    async def written(self, start: int, end: int) -> None:
        """Return once a write has landed in `[start, end)`."""
        while not any(start <= s < end for s, _ in self.writes):
            self._wrote.clear()
            await self._wrote.wait()
