"""What an S3 object's bytes are checked against while they stream: the best evidence S3
offers of the whole object.

- a SHA-256 checksum S3 keeps (HEAD with checksum mode): the blob may be here already;
- for a large object, a full-object CRC S3 keeps (CRC64NVME, CRC32C, CRC32): every object
  written since late 2024 has one, and SDK uploads send a CRC32 by default. It guards the
  transfer as well as the MD5 ETag does, at a twentieth of the CPU;
- else the ETag: a single-part ETag is an MD5; a multipart one (`"<md5 of part md5s>-N"`) is
  checked with the part size a HEAD of part 1 reveals.
A checksum of part checksums (type COMPOSITE, or a value ending in `-N`) never counts: it is
not a checksum of the bytes as they arrive.
"""

from __future__ import annotations

import base64
import re

from ...store import CRC_ALGORITHMS, Crc, Expected
from .control import ObjectHead, S3Object

MULTIPART = re.compile(r"^([0-9a-f]{32})-(\d+)$")
MD5 = re.compile(r"^[0-9a-f]{32}$")
CHECKSUM_PREFERENCE = ("SHA256", *CRC_ALGORITHMS)
CRC_HEAD_MIN_SIZE = 8 * 1024 * 1024
"""Below this, a HEAD for the object's CRC costs more than checking its MD5 ETag."""


def worth_a_head(obj: S3Object) -> bool:
    """Whether to ask S3 for the checksum it keeps: a SHA-256 always (a blob already here is
    then found before any byte moves); a CRC for a large object, where checking it instead of
    the MD5 ETag saves real CPU (MD5 runs at about 600 MiB/s a core, a CRC at several GB/s)."""
    if "SHA256" in obj.checksums:
        return True
    return obj.size >= CRC_HEAD_MIN_SIZE and bool(obj.checksums & set(CRC_ALGORITHMS))


def stored_checksum(head: ObjectHead, etag: str) -> tuple[str, bytes] | None:
    """The best whole-object checksum in a HEAD's answer (checksum mode): its algorithm and
    value, or None."""
    kind = head.checksum_type
    if kind is None and MULTIPART.match(etag.strip('"')):
        return None  # unsaid, and a multipart object's may be a checksum of part checksums
    if kind not in (None, "FULL_OBJECT"):
        return None
    for algorithm in CHECKSUM_PREFERENCE:
        value = head.checksums.get(algorithm) or ""
        if not value or "-" in value:
            continue
        try:
            return algorithm, base64.b64decode(value, validate=True)
        except ValueError:
            continue
    return None


def part_size(head: ObjectHead) -> int | None:
    """Part 1's size from a HEAD with `PartNumber=1`, if the answer is about a part (206 or a
    parts count): a server that ignores part numbers answers with the whole object."""
    length = head.content_length
    if length is None or length <= 0:
        return None
    if head.status != 206 and head.parts_count is None:
        return None
    return length


def expected(obj: S3Object, stored: tuple[str, bytes] | None, part: int | None = None) -> Expected:
    """The digests to check `obj`'s bytes against, from the best evidence at hand."""
    etag = obj.etag.strip('"')
    if stored is not None and stored[0] == "SHA256":
        return Expected(size=obj.size, sha256=stored[1].hex())  # finds blobs here too
    if stored is not None:
        return Expected(size=obj.size, crc=Crc(stored[0], int.from_bytes(stored[1], "big")))
    if MD5.match(etag):
        return Expected(size=obj.size, md5=etag)
    if MULTIPART.match(etag) and part:
        return Expected(size=obj.size, multipart_etag=etag, part_size=part)
    return Expected(size=obj.size)  # unverifiable beyond its size; still fetched


def needs_part_size(obj: S3Object, stored: tuple[str, bytes] | None) -> bool:
    """A multipart ETag is only checkable with the part size, which takes another HEAD."""
    return stored is None and obj.size > 0 and bool(MULTIPART.match(obj.etag.strip('"')))
