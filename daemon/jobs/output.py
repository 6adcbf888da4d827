"""An op's output on disk: `jobs/<job id>/<op>.<stream>.log`, one `<timestamp> <line>` per line,
so stdout and stderr stay apart and can be merged in time order when read.

The engine's log pumps (threads) write the files; the API, result extraction and a re-attach
after a restart read them. Every read and every removal happens in a worker thread (or in
the pump's own), never on the event loop: a log can be gigabytes.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .names import op_key
from .tail import LogLine, LogTail

STREAMS = ("stdout", "stderr")


class OpOutput:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, job_id: str, op_id: str, stream: str) -> Path:
        return self.root / job_id / f"{op_key(op_id)}.{stream}.log"

    def writer(self, job_id: str, op_id: str, stream: str, after: str | None) -> LogWriter:
        return LogWriter(self.path(job_id, op_id, stream), after)

    def tail(self, job_id: str, op_id: str, streams: tuple[str, ...] = STREAMS) -> LogTail:
        """A reader of the op's lines so far and of those still to come."""
        return LogTail({stream: self.path(job_id, op_id, stream) for stream in streams})

    def lines(
        self, job_id: str, op_id: str, streams: tuple[str, ...] = STREAMS
    ) -> Iterator[LogLine]:
        """Every line of the op so far, merged in time order. Blocking: for worker threads."""
        tail = self.tail(job_id, op_id, streams)
        while True:
            yield from tail.read_now(to_end=True)
            if tail.caught_up:
                return

    async def last_timestamp(self, job_id: str, op_id: str) -> str | None:
        """The newest timestamp in an op's output (to re-attach after a restart without
        repeating a line)."""
        return await asyncio.to_thread(self._last_timestamp, job_id, op_id)

    def _last_timestamp(self, job_id: str, op_id: str) -> str | None:
        newest = None
        for stream in STREAMS:
            path = self.path(job_id, op_id, stream)
            try:
                with open(path, "rb") as handle:
                    handle.seek(max(0, handle.seek(0, 2) - 65536))
                    last = handle.read().splitlines()
            except FileNotFoundError:
                continue
            if last:
                stamp = last[-1].partition(b" ")[0].decode(errors="replace")
                newest = max(newest or stamp, stamp)
        return newest

    async def remove(self, job_id: str) -> None:
        """A job's output, every op's, gone."""
        await asyncio.to_thread(shutil.rmtree, self.root / job_id, True)


class LogWriter:
    """Appends one stream of one op, called by the engine's log pump in its own thread.

    The file is opened at the first line, in that thread; lines stamped at or before `after`
    are skipped (after a restart, they were written before it). Once closed (the op ended,
    or its pump outlived the wait for it), further lines are dropped.
    """

    def __init__(self, path: Path, after: str | None) -> None:
        self.path = path
        self.after = after
        self._handle: BinaryIO | None = None
        self._closed = False
        self._lock = threading.Lock()

    def write(self, stamp: str, line: bytes) -> None:
        if self.after is not None and stamp <= self.after:
            return
        with self._lock:
            if self._closed:
                return
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "ab", buffering=0)  # noqa: SIM115 (see close)
            self._handle.write(stamp.encode() + b" " + line + b"\n")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._handle is not None:
                self._handle.close()
