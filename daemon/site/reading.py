"""Reading a blob from the site store into the store's sink, every piece checked first.

The store checks a file's digests only once the whole file is in (its hash follows the bytes
as they arrive), and a bad byte there fails the entry. Bytes from the site store must not get
that far: each piece (the whole file, or one chunk of a large one) is held in memory, hashed
against the digest the manifest gives for it, and only then written. A piece that does not
match raises `UpstreamIntegrityError` with the sink short of just that piece, so the caller
fetches what is missing from upstream and the entry never sees a damaged byte.

Pieces of a large blob come in parallel (ranged GETs), at most `PIECES_AT_ONCE` in memory.
A piece that fails does not stop the others: what upstream must give is only what failed.
"""

from __future__ import annotations

import asyncio
import hashlib

from ..errors import UpstreamIntegrityError
from ..store import BlobSink
from .bucket import SiteBucket
from .health import SiteCounters
from .layout import Layout, SiteFile

PIECES_AT_ONCE = 8
"""Pieces held in memory at once across every read (8 MiB each by default)."""


class BlobReader:
    def __init__(self, bucket: SiteBucket, layout: Layout, counters: SiteCounters) -> None:
        self.bucket = bucket
        self.layout = layout
        self.counters = counters
        self._slots = asyncio.Semaphore(PIECES_AT_ONCE)

    async def read(self, file: SiteFile, sink: BlobSink) -> None:
        """Write every missing byte of `sink` from the site store's copy of `file`."""
        missing = sink.missing()
        pieces = [
            (index, span)
            for index, span in enumerate(file.pieces())
            if any(_overlap(span, gap) for gap in missing)
        ]
        outcomes = await asyncio.gather(
            *(self._piece(file, index, span, sink) for index, span in pieces),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _piece(
        self, file: SiteFile, index: int, span: tuple[int, int], sink: BlobSink
    ) -> None:
        key = self.layout.blob(file.sha256)
        whole = span == (0, file.size)
        async with self._slots:
            data = await self.bucket.get(key, None if whole else span)
            expected = file.sha256 if whole else file.chunks[index]
            if len(data) != span[1] - span[0] or await _sha256(data) != expected:
                what = "" if whole else f" (bytes {span[0]}-{span[1] - 1})"
                raise UpstreamIntegrityError(
                    f"site store: blob {file.sha256[:12]} for {file.path}{what} is damaged"
                )
            for gap in sink.missing():
                start, end = max(gap[0], span[0]), min(gap[1], span[1])
                if (start, end) == span:
                    await sink.write(start, data)  # the whole piece: no copy of it
                elif start < end:
                    await sink.write(start, data[start - span[0] : end - span[0]])
                if start < end:
                    self.counters.bytes_from_site += end - start


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


async def _sha256(data: bytes) -> str:
    if len(data) < 256 * 1024:
        return hashlib.sha256(data).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
