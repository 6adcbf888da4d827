"""What an S3 object's bytes are checked against, from its listing and HEAD answers."""

from __future__ import annotations

import base64
import hashlib

from daemon.sources.s3.control import ObjectHead, S3Object
from daemon.sources.s3.evidence import (
    CRC_HEAD_MIN_SIZE,
    expected,
    needs_part_size,
    part_size,
    stored_checksum,
    worth_a_head,
)
from daemon.store import Crc

SHA = hashlib.sha256(b"w").digest()
CRC = (123456789).to_bytes(8, "big")
MD5 = hashlib.md5(b"w").hexdigest()


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def test_a_head_is_worth_it_for_a_sha256_always_and_for_a_crc_on_large_objects() -> None:
    assert worth_a_head(S3Object("k", 10, f'"{MD5}"', frozenset({"SHA256"})))
    assert not worth_a_head(S3Object("k", CRC_HEAD_MIN_SIZE - 1, f'"{MD5}"', frozenset({"CRC32"})))
    assert worth_a_head(S3Object("k", CRC_HEAD_MIN_SIZE, f'"{MD5}"', frozenset({"CRC64NVME"})))
    assert not worth_a_head(S3Object("k", 10 * CRC_HEAD_MIN_SIZE, f'"{MD5}"'))


def test_sha256_is_preferred_to_crcs_and_crcs_to_nothing() -> None:
    answer = {
        "ChecksumSHA256": b64(SHA),
        "ChecksumCRC64NVME": b64(CRC),
        "ChecksumType": "FULL_OBJECT",
    }
    assert stored_checksum(ObjectHead.of(answer), f'"{MD5}"') == ("SHA256", SHA)
    del answer["ChecksumSHA256"]
    assert stored_checksum(ObjectHead.of(answer), f'"{MD5}"') == ("CRC64NVME", CRC)
    assert stored_checksum(ObjectHead(), f'"{MD5}"') is None


def test_checksums_of_part_checksums_never_count() -> None:
    composite = ObjectHead(checksum_type="COMPOSITE", checksums={"CRC32": b64(CRC[:4])})
    assert stored_checksum(composite, f'"{MD5}-3"') is None
    assert stored_checksum(ObjectHead(checksums={"SHA256": b64(SHA) + "-3"}), f'"{MD5}"') is None
    # Unsaid type on a multipart object: it may be composite, so it does not count either.
    assert stored_checksum(ObjectHead(checksums={"CRC32": b64(CRC[:4])}), f'"{MD5}-3"') is None
    assert stored_checksum(ObjectHead(checksums={"CRC32": "not base64!"}), f'"{MD5}"') is None


def test_expected_digests_follow_the_best_evidence() -> None:
    small = S3Object("k", 5, f'"{MD5}"')
    assert expected(small, ("SHA256", SHA)).sha256 == SHA.hex()
    assert expected(small, ("CRC64NVME", CRC)).crc == Crc("CRC64NVME", 123456789)
    assert expected(small, None).md5 == MD5
    multipart = S3Object("k", 20, f'"{MD5}-2"')
    assert needs_part_size(multipart, None)
    assert not needs_part_size(multipart, ("CRC32", CRC[:4]))
    checked = expected(multipart, None, 16)
    assert (checked.multipart_etag, checked.part_size) == (f"{MD5}-2", 16)
    assert expected(multipart, None, None) == expected(S3Object("k", 20, '"opaque"'), None)


def test_a_part_size_counts_only_from_an_answer_about_a_part() -> None:
    assert part_size(ObjectHead(status=206, content_length=8)) == 8
    assert part_size(ObjectHead(status=200, content_length=8, parts_count=3)) == 8
    assert part_size(ObjectHead(status=200, content_length=20)) is None  # part number ignored
    assert part_size(ObjectHead(status=206)) is None
    answered = {"ContentLength": 8, "ResponseMetadata": {"HTTPStatusCode": 206}}
    assert part_size(ObjectHead.of(answered)) == 8
