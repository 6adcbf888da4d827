"""Reading an op's output files as they grow, without reading any byte twice.

A tail remembers, per stream, how far it has read and the unfinished last line; each read
returns the lines appended since the previous one, stdout and stderr merged in time order.
Reads are bounded (`chunk` bytes per stream), so a log of gigabytes streams through in that
much memory. A stream that has more to read holds back the lines, its own and the other
streams', that are not older than its newest, so that bounded reads do not change the order:
files read after they were complete come out in the order a sort of their lines by timestamp
gives, ties in stream order (as earlier versions read them whole). Lines that arrive while a
tail follows come out in time order within each read. Either way, every line comes out once.
Within one stream the lines are in time order already, as Docker writes them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

CHUNK = 1 << 20
"""Bytes read from one stream's file at a time."""


class LogLine(NamedTuple):
    stamp: str
    """Docker's RFC 3339 timestamp with nanoseconds: sorts as text in time order."""
    stream: str
    text: str


@dataclass
class _Stream:
    name: str
    path: Path
    offset: int = 0
    partial: bytes = b""
    """The bytes after the last newline read: a line still being written."""
    more: bool = False
    """The last read filled a whole chunk: the file has more right now."""
    lines: deque[LogLine] = field(default_factory=deque)
    """Read, not yet returned (held back by another stream's unread lines)."""

    def newest(self) -> str:
        """The newest timestamp read from this stream (its next lines are newer)."""
        if self.lines:
            return self.lines[-1].stamp
        return self.partial.partition(b" ")[0].decode(errors="replace")


class LogTail:
    def __init__(self, paths: Mapping[str, Path], chunk: int = CHUNK) -> None:
        """`paths`: stream name → file, in the order that breaks ties between equal
        timestamps (stdout first)."""
        self._streams = [_Stream(name, path) for name, path in paths.items()]
        self._chunk = chunk
        self.bytes_read = 0
        """Bytes read from the files so far: what was appended, each byte once."""

    @property
    def caught_up(self) -> bool:
        """The last read reached the end of every file and returned every line it read
        (but an unfinished last line, unless it was read `to_end`)."""
        return not any(s.more or s.lines for s in self._streams)

    async def read(self, *, to_end: bool = False) -> list[LogLine]:
        """The lines appended since the last read, in a worker thread (see `read_now`)."""
        return await asyncio.to_thread(self.read_now, to_end=to_end)

    def read_now(self, *, to_end: bool = False) -> list[LogLine]:
        """The lines appended since the last read, up to a chunk per stream; call again until
        `caught_up` for everything there is. `to_end`: the files are complete, so a last line
        without a newline counts too. Blocking: for worker threads."""
        for stream in self._streams:
            self._fill(stream, to_end)
        return self._merge()

    def _fill(self, stream: _Stream, to_end: bool) -> None:
        try:
            with open(stream.path, "rb") as handle:
                handle.seek(stream.offset)
                data = handle.read(self._chunk)
        except FileNotFoundError:
            data = b""  # nothing written to this stream yet
        stream.offset += len(data)
        self.bytes_read += len(data)
        stream.more = len(data) == self._chunk
        *complete, stream.partial = (stream.partial + data).split(b"\n")
        if to_end and not stream.more and stream.partial:
            complete.append(stream.partial)
            stream.partial = b""
        stream.lines.extend(_parse(complete, stream.name))

    def _merge(self) -> list[LogLine]:
        # A stream with more to read has nothing older than its newest line still unread:
        # lines older than every such stream's newest can go, the rest wait.
        limits = [s.newest() for s in self._streams if s.more]
        limit = min(limits) if limits else None
        ready: list[LogLine] = []
        for stream in self._streams:
            while stream.lines and (limit is None or stream.lines[0].stamp < limit):
                ready.append(stream.lines.popleft())
        ready.sort(key=lambda line: line.stamp)  # stable: stdout before stderr on a tie
        return ready


def _parse(raw_lines: list[bytes], stream: str) -> Iterator[LogLine]:
    """`<timestamp> <text>` lines; split as `bytes.splitlines` splits (a lone \\r too), which
    is how earlier versions read these files."""
    for raw in raw_lines:
        for part in raw.splitlines() or [b""]:
            stamp, _, text = part.partition(b" ")
            yield LogLine(stamp.decode(errors="replace"), stream, text.decode(errors="replace"))
