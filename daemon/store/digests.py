"""Digests of a blob's bytes: the sha256 that addresses it, and whatever upstream announced.

`Hashes` is fed a file's bytes in order and keeps every digest the `Expected` asks for (MD5,
a git blob id, an S3 multipart ETag, a CRC S3 keeps); `verified` compares them all and names
each mismatch, so a corrupt download never becomes a blob.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UpstreamIntegrityError
from .models import Expected

HASH_CHUNK = 1024 * 1024


def crc_function(algorithm: str) -> Callable[[Any, int], int]:
    """One of `CRC_ALGORITHMS`, from awscrt (it names them as S3 does, in lower case):
    hardware-assisted, several GB/s a core against MD5's 0.6. Imported on first use, not at
    the daemon's start, which it would slow by a twentieth of a second."""
    import awscrt.checksums  # lazily: see the docstring

    function: Callable[[Any, int], int] = getattr(awscrt.checksums, algorithm.lower())
    return function


_HEX = frozenset("0123456789abcdef")


def is_sha256(value: str) -> bool:
    return len(value) == 64 and set(value) <= _HEX


class Hashes:
    """Every digest we need for one file, fed the bytes in order."""

    def __init__(self, expected: Expected) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5() if expected.md5 else None
        self._crc_of = crc_function(expected.crc.algorithm) if expected.crc else None
        self.crc = 0
        self.git = hashlib.sha1(f"blob {expected.size}\0".encode()) if expected.git_sha1 else None
        self.part_size = expected.part_size if expected.multipart_etag else None
        self.part_md5s: list[bytes] = []
        self._part = hashlib.md5() if self.part_size else None
        self._part_fill = 0

    def update(self, data: memoryview | bytes) -> None:
        self.sha256.update(data)
        if self.md5 is not None:
            self.md5.update(data)
        if self.git is not None:
            self.git.update(data)
        if self._crc_of is not None:
            self.crc = self._crc_of(data, self.crc)
        if self._part is not None and self.part_size:
            view = memoryview(data)
            while view:
                take = min(len(view), self.part_size - self._part_fill)
                self._part.update(view[:take])
                self._part_fill += take
                view = view[take:]
                if self._part_fill == self.part_size:
                    self.part_md5s.append(self._part.digest())
                    self._part, self._part_fill = hashlib.md5(), 0

    def multipart_etag(self) -> str:
        parts = list(self.part_md5s)
        if self._part is not None and self._part_fill:
            parts.append(self._part.digest())
        return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"


def verified(name: str, expected: Expected, hashes: Hashes) -> str:
    """The sha256 of what was hashed, after checking every digest upstream announced."""
    sha256 = hashes.sha256.hexdigest()
    problems = []
    if expected.sha256 and expected.sha256 != sha256:
        problems.append(f"sha256 {sha256}, expected {expected.sha256}")
    if expected.md5 and hashes.md5 is not None and hashes.md5.hexdigest() != expected.md5:
        problems.append(f"md5 {hashes.md5.hexdigest()}, expected {expected.md5}")
    if expected.crc and hashes.crc != expected.crc.value:
        problems.append(f"{expected.crc.algorithm} {hashes.crc:x}, expected {expected.crc.value:x}")
    if expected.git_sha1 and hashes.git and hashes.git.hexdigest() != expected.git_sha1:
        problems.append(f"git blob id {hashes.git.hexdigest()}, expected {expected.git_sha1}")
    if expected.multipart_etag and hashes.part_size:
        got = hashes.multipart_etag()
        if got != expected.multipart_etag:
            problems.append(f"multipart ETag {got}, expected {expected.multipart_etag}")
    if problems:
        raise UpstreamIntegrityError(f"{name}: corrupt download: {'; '.join(problems)}")
    return sha256


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
