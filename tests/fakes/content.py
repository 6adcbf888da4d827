"""File contents for fake upstreams: bytes in memory, or large files generated on the fly.

A generated file is a seeded pseudo-random megabyte repeated, with its offset mixed in every
block, so a 4 GiB file costs no memory and no disk, still has a single well-defined sha256,
and is not trivially deduplicated against another seed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import awscrt.checksums

BLOCK = 1024 * 1024


@dataclass
class Content:
    """Bytes a fake serves: `data` in memory, or `size` bytes generated from `seed`."""

    data: bytes | None = None
    size_: int = 0
    seed: int = 0
    _sha256: str | None = field(default=None, repr=False)
    _small: bytes | None = field(default=None, repr=False)
    _git: str | None = field(default=None, repr=False)
    _md5: str | None = field(default=None, repr=False)
    _crcs: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, data: bytes) -> Content:
        return cls(data=data, size_=len(data))

    @classmethod
    def generated(cls, size: int, seed: int) -> Content:
        return cls(size_=size, seed=seed)

    @property
    def size(self) -> int:
        return self.size_

    def _pattern(self) -> bytes:
        """The repeated block (as long as the file, if shorter); kept for small files, which
        fakes serve and list thousands of times."""
        if self._small is not None:
            return self._small
        pattern = random.Random(self.seed).randbytes(min(BLOCK, self.size_))
        if self.size_ <= 64 * 1024:
            self._small = pattern
        return pattern

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes of `[start, end)` in pieces of at most a megabyte."""
        end = self.size if end is None else end
        if self.data is not None:
            for offset in range(start, end, BLOCK):
                yield self.data[offset : min(end, offset + BLOCK)]
            return
        pattern = self._pattern()
        offset = start
        while offset < end:
            block, within = divmod(offset, BLOCK)
            stamp = block.to_bytes(8, "big")
            piece = (stamp + pattern[8:])[: len(pattern)]
            take = min(end - offset, BLOCK - within)
            yield piece[within : within + take]
            offset += take

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        return b"".join(self.chunks(start, end))

    def _digests(self) -> None:
        sha, md5 = hashlib.sha256(), hashlib.md5()
        for chunk in self.chunks():
            sha.update(chunk)
            md5.update(chunk)
        self._sha256, self._md5 = sha.hexdigest(), md5.hexdigest()

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._digests()
        assert self._sha256 is not None
        return self._sha256

    @property
    def md5(self) -> str:
        if self._md5 is None:
            self._digests()
        assert self._md5 is not None
        return self._md5

    def crc(self, algorithm: str) -> int:
        """The CRC (S3's name: CRC32, CRC32C, CRC64NVME) of these bytes, as S3 keeps it."""
        if algorithm not in self._crcs:
            function = getattr(awscrt.checksums, algorithm.lower())
            value = 0
            for chunk in self.chunks():
                value = function(chunk, value)
            self._crcs[algorithm] = value
        return self._crcs[algorithm]

    def git_blob_id(self) -> str:
        """The git object id of these bytes (`sha1("blob <size>\\0" + bytes)`)."""
        if self._git is None:
            sha1 = hashlib.sha1(f"blob {self.size}\0".encode())
            for chunk in self.chunks():
                sha1.update(chunk)
            self._git = sha1.hexdigest()
        return self._git


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`[start, end)` from a `Range: bytes=a-b` header; None when absent or unsatisfiable."""
    if not header or not header.startswith("bytes="):
        return None
    first, _, last = header.removeprefix("bytes=").partition("-")
    if "," in last:
        return None
    if not first:
        length = int(last)
        return max(0, size - length), size
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        return None
    return start, end
