"""Content-addressed blob files: `blobs/sha256/ab/cdef…`, read-only, each content once.

A blob is written by an `Ingest`: the bytes land in a temp file under `tmp/` (the same
filesystem, so the final rename is atomic) at any offset, from any number of parallel ranged
parts, and the hash follows the contiguous prefix in order (reading back what arrived out of
order), so memory stays bounded whatever the file size. `finish()` checks every digest
upstream announced and hands back the sha256; the store then renames the file into place and
records it in one database transaction (see store.py). A failed ingest leaves no temp file
behind unless it is resumable (then the index remembers it).

Durability is the store's checkpoint (`sync_filesystem`, every 30 s and at shutdown), not an
fsync per blob: a blob written since the last checkpoint is re-hashed at the next start if the
daemon did not stop cleanly (maintenance.py). Writes are handed to the disk as they arrive
(`_start_writeback`), so a checkpoint has little left to do.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InsufficientSpace, StoreError, UpstreamIntegrityError
from .digests import HASH_CHUNK, Hashes, verified
from .models import Expected

WRITEBACK_EVERY = 16 * 1024 * 1024
"""Large blobs are handed to the disk as they arrive, not in one burst at the checkpoint."""


class BlobPaths:
    """Where things live under the store root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.tmp = root / "tmp"

    def blob(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256[2:]

    def new_tmp(self) -> Path:
        return self.tmp / f"{uuid.uuid4().hex}.part"

    def ensure(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)


class _Ranges:
    """Sorted, merged `[start, end)` intervals of bytes written."""

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self.items: list[tuple[int, int]] = []
        for start, end in ranges or []:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        if start >= end:
            return
        merged: list[tuple[int, int]] = []
        for s, e in self.items:
            if e < start or s > end:
                merged.append((s, e))
            else:
                start, end = min(s, start), max(e, end)
        merged.append((start, end))
        self.items = sorted(merged)

    def prefix(self) -> int:
        """Length of the contiguous run from offset 0."""
        return self.items[0][1] if self.items and self.items[0][0] == 0 else 0

    def missing(self, size: int) -> list[tuple[int, int]]:
        gaps, cursor = [], 0
        for s, e in self.items:
            if s > cursor:
                gaps.append((cursor, s))
            cursor = max(cursor, e)
        if cursor < size:
            gaps.append((cursor, size))
        return gaps

    def done(self) -> int:
        return sum(e - s for s, e in self.items)


class Ingest:
    """One blob being written: positional writes (any order, any concurrency), ordered hash.

    Writers never wait for each other or for the hash: `_state` guards only bookkeeping, and
    whichever thread finds the hasher free (`_hashing`) hashes the contiguous prefix, reading
    back from the page cache what arrived ahead of it; data that arrives in order is hashed
    straight from memory. Closing waits for writes still in flight, so no write can land in a
    closed (and possibly reused) file descriptor.
    """

    def __init__(
        self,
        paths: BlobPaths,
        expected: Expected,
        *,
        name: str,
        tmp_path: Path | None = None,
        written: list[tuple[int, int]] | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.expected = expected
        self.name = name
        self.tmp_path = tmp_path or paths.new_tmp()
        self._on_bytes = on_bytes
        self._ranges = _Ranges(written)
        self._hashes = Hashes(expected)
        self._hashed = 0
        self._state = threading.Lock()
        self._no_writers = threading.Condition(self._state)
        self._writers = 0
        self._hashing = threading.Lock()
        self._fd = os.open(self.tmp_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._closed = False
        self._unflushed = 0

    @property
    def size(self) -> int:
        return self.expected.size

    def missing(self) -> list[tuple[int, int]]:
        with self._state:
            return self._ranges.missing(self.expected.size)

    def written(self) -> list[tuple[int, int]]:
        with self._state:
            return list(self._ranges.items)

    async def write(self, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > self.expected.size:
            raise UpstreamIntegrityError(
                f"{self.name}: upstream sent more than the announced {self.expected.size} bytes"
            )
        await asyncio.get_running_loop().run_in_executor(None, self._write, offset, data)
        if self._on_bytes is not None:
            self._on_bytes(len(data))

    def _write(self, offset: int, data: bytes) -> None:
        with self._state:
            if self._closed:
                raise StoreError(f"{self.name}: write after the download was abandoned")
            self._writers += 1
        try:
            view = memoryview(data)
            position = offset
            while view:
                count = os.pwrite(self._fd, view, position)
                view, position = view[count:], position + count
            with self._state:
                self._ranges.add(offset, offset + len(data))
                self._unflushed += len(data)
                kick = self._unflushed >= WRITEBACK_EVERY
                if kick:
                    self._unflushed = 0
            if kick:
                _start_writeback(self._fd)
        except OSError as exc:
            raise _os_error(exc, self.expected.size, self.name, self.tmp_path) from exc
        finally:
            with self._state:
                self._writers -= 1
                self._no_writers.notify_all()
        self._hash_forward(data_at=(offset, data))

    def _hash_forward(self, data_at: tuple[int, bytes] | None = None, wait: bool = False) -> None:
        """Advance the hash over the contiguous prefix, if no other thread is at it.

        A writer that finds the hasher busy leaves: the busy thread checks the prefix again
        before it lets go, so no contiguous byte is left unhashed.
        """
        while self._hashing.acquire(blocking=wait):
            try:
                if data_at is not None and data_at[0] == self._hashed:
                    self._hashes.update(data_at[1])
                    self._hashed += len(data_at[1])
                data_at = None
                while True:
                    with self._state:
                        limit = self._ranges.prefix()
                    if self._hashed >= limit:
                        break
                    size = min(HASH_CHUNK, limit - self._hashed)
                    chunk = os.pread(self._fd, size, self._hashed)
                    if not chunk:
                        break
                    self._hashes.update(chunk)
                    self._hashed += len(chunk)
            finally:
                self._hashing.release()
            with self._state:
                if self._ranges.prefix() <= self._hashed:
                    return

    async def finish(self) -> str:
        """Verify size and digests; the sha256 of the bytes. Raises on any mismatch."""
        return await asyncio.get_running_loop().run_in_executor(None, self._finish)

    def _finish(self) -> str:
        self._hash_forward(wait=True)
        with self._state:
            missing = self._ranges.missing(self.expected.size)
            done = self._ranges.done()
        if self._hashed != self.expected.size or missing:
            raise UpstreamIntegrityError(f"{self.name}: got {done} of {self.expected.size} bytes")
        sha256 = verified(self.name, self.expected, self._hashes)
        self._close()
        return sha256

    def _close(self) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
            while self._writers:
                self._no_writers.wait()
        os.close(self._fd)

    def discard(self) -> None:
        """Close and delete the temp file (a failed, non-resumable ingest)."""
        self._close()
        self.tmp_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close but keep the temp file, for a later resume."""
        self._close()


class MemoryIngest:
    """A small blob gathered in memory: no temp file of its own, no thread hop.

    A temp file per small file costs more than the file (think thousands of tokenizer
    shards), and its creation would block the event loop; small blobs are verified here and
    written by `write_small_blob` on the database thread.
    """

    def __init__(
        self, expected: Expected, *, name: str, on_bytes: Callable[[int], None] | None = None
    ) -> None:
        self.expected = expected
        self.name = name
        self._buffer = bytearray(expected.size)
        self._ranges = _Ranges()
        self._on_bytes = on_bytes

    @property
    def size(self) -> int:
        return self.expected.size

    def missing(self) -> list[tuple[int, int]]:
        return self._ranges.missing(self.expected.size)

    async def write(self, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > self.expected.size:
            raise UpstreamIntegrityError(
                f"{self.name}: upstream sent more than the announced {self.expected.size} bytes"
            )
        self._buffer[offset : offset + len(data)] = data
        self._ranges.add(offset, offset + len(data))
        if self._on_bytes is not None:
            self._on_bytes(len(data))

    def finish(self) -> tuple[str, bytes]:
        """The verified sha256 and bytes; raises on a short read or any digest mismatch."""
        if self._ranges.missing(self.expected.size):
            raise UpstreamIntegrityError(
                f"{self.name}: got {self._ranges.done()} of {self.expected.size} bytes"
            )
        hashes = Hashes(self.expected)
        hashes.update(memoryview(self._buffer))
        return verified(self.name, self.expected, hashes), bytes(self._buffer)


def write_small_blob(paths: BlobPaths, sha256: str, data: bytes) -> None:
    """Write a verified small blob through a temp file and a rename."""
    tmp = paths.new_tmp()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, 0o444)  # explicitly: a umask (systemd's UMask=0027) must not narrow it
    except OSError as exc:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise _os_error(exc, len(data), sha256, paths.tmp) from exc
    os.close(fd)
    final = paths.blob(sha256)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


def sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding `path` (syncfs): every blob written so far is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc is not None and _libc.syncfs(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing a file's dirty pages now (sync_file_range with
    SYNC_FILE_RANGE_WRITE: it does not wait); without it the final fsync would write the
    whole file at once, after the download instead of during it."""
    if _libc is not None:
        _libc.sync_file_range(fd, ctypes.c_longlong(0), ctypes.c_longlong(0), 2)


def _load_libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_libc = _load_libc()


def _os_error(exc: OSError, size: int, name: str, where: Path) -> Exception:
    """A full disk or quota becomes the store's error, naming the file and the filesystem."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(where.parent).free
        except OSError:
            free = 0
        return InsufficientSpace(
            size, free, f"the disk under {where.parent} filled up while writing {name}"
        )
    return exc


def commit_blob(paths: BlobPaths, tmp_path: Path, sha256: str) -> None:
    """Move a verified temp file into `blobs/`, read-only. Idempotent if the blob exists."""
    final = paths.blob(sha256)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp_path, 0o444)
    os.replace(tmp_path, final)


def remove_blob_file(paths: BlobPaths, sha256: str) -> None:
    paths.blob(sha256).unlink(missing_ok=True)
