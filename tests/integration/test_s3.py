"""S3 prefixes through the cache, against two S3 implementations: moto's server and s3rver.

What both implement runs against both (`any_s3`). A few cases run on moto only, each saying
which feature s3rver lacks. The S3-like hosts of tests/fakes (a bucket behind its own domain,
faults, CRCs) are in test_s3_hosts.py.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from boto3.s3.transfer import TransferConfig

from daemon.errors import UnsafeUpstream, UpstreamAuthError, UpstreamNotFound
from daemon.resources import S3Resource, parse_resource
from tests.integration.conftest import CacheFactory
from tests.peers.s3 import REGION, S3Peer
from tests.peers.s3rver import S3rverPeer

MB = 1024 * 1024
AnyS3 = S3Peer | S3rverPeer


def s3res(**fields: object) -> S3Resource:
    resource = parse_resource({"type": "S3", **fields})
    assert isinstance(resource, S3Resource)
    return resource


async def test_a_prefix_of_33_objects_listed_in_pages_fetched_and_verified(
    any_s3: AnyS3, make_cache: CacheFactory
) -> None:
    """The case s3rver's own namespace once broke ('no objects there' for 33 objects boto3
    lists), in pages of 10 so that continuation tokens are followed on both servers."""
    objects = {f"llm/shard-{i:02}.bin": os.urandom(1000 + i) for i in range(32)}
    objects["llm/tokenizer/config.json"] = b'{"vocab": 32000}'
    objects["llm-other/not-under-the-prefix.bin"] = b"no"
    any_s3.bucket("altbucket", objects)
    async with make_cache(s3=any_s3, **any_s3.operator_env()) as cache:
        cache.sources.s3.control.page_size = 10
        lease = await cache.acquire(s3res(url="s3://altbucket/llm"), holder="t")
        assert lease.view is not None
        assert lease.entry.file_count == 33
        for key, data in objects.items():
            if key.startswith("llm/"):
                assert (lease.view / key.removeprefix("llm/")).read_bytes() == data
        files = await cache.store.files(lease.entry.id)
        by_path = {file.path: file.sha256 for file in files}
        assert by_path["tokenizer/config.json"] == hashlib.sha256(b'{"vocab": 32000}').hexdigest()
        assert not (lease.view / "not-under-the-prefix.bin").exists()


@pytest.mark.slow  # 1,100 objects put and listed: about 13 s
async def test_a_prefix_with_nested_keys_and_more_than_1000_objects(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    """On moto only: at S3's own page size (1,000 keys), which takes 1,100 uploads (25 s on
    moto; s3rver's paging is covered above with small pages)."""
    objects = {f"models/sd/unet/shard-{i:04}.bin": f"shard {i}".encode() for i in range(1100)}
    objects["models/sd/config.json"] = b"{}"
    objects["models/other/ignored.txt"] = b"not under the prefix"
    s3.bucket("wide-bucket", objects)
    async with make_cache(s3=s3, **s3.operator_env()) as cache:
        lease = await cache.acquire(s3res(url="s3://wide-bucket/models/sd"), holder="t")
        assert lease.view is not None
        assert lease.entry.file_count == 1101
        assert (lease.view / "config.json").read_bytes() == b"{}"
        assert (lease.view / "unet/shard-1099.bin").read_bytes() == b"shard 1099"
        assert not (lease.view / "ignored.txt").exists()
        assert lease.entry.details["credential"] == f"access key {s3.access_key} (s3.access_key_id)"


async def test_multipart_objects_are_verified_against_their_etag(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    """On moto only: s3rver gives a multipart upload the MD5 of the whole object as its ETag,
    and ignores `partNumber`, so there is no multipart ETag to check there."""
    data = os.urandom(13 * MB)
    client = s3.client()
    client.create_bucket(Bucket="multipart-bucket")
    config = TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    client.upload_fileobj(io.BytesIO(data), "multipart-bucket", "big/w.bin", Config=config)
    assert client.head_object(Bucket="multipart-bucket", Key="big/w.bin")["ETag"].endswith('-3"')
    async with make_cache(s3=s3, **s3.operator_env()) as cache:
        lease = await cache.acquire(s3res(url="s3://multipart-bucket/big"), holder="t")
        assert lease.view is not None
        assert (lease.view / "w.bin").read_bytes() == data
        files = await cache.store.files(lease.entry.id)
        assert files[0].sha256 == hashlib.sha256(data).hexdigest()


async def test_files_pick_objects_and_a_missing_one_is_named(
    any_s3: AnyS3, make_cache: CacheFactory
) -> None:
    any_s3.bucket("files-bucket", {"p/a.txt": b"a", "p/b/c.txt": b"c", "p/d.txt": b"d"})
    async with make_cache(s3=any_s3, **any_s3.operator_env()) as cache:
        lease = await cache.acquire(
            s3res(url="s3://files-bucket/p/", files=["a.txt", "b/c.txt"]), holder="t"
        )
        assert lease.view is not None
        assert sorted(str(p.relative_to(lease.view)) for p in lease.view.rglob("*.txt")) == [
            "a.txt",
            "b/c.txt",
        ]
        with pytest.raises(UpstreamNotFound, match=r"no such file\(s\): nope\.txt"):
            await cache.acquire(s3res(url="s3://files-bucket/p", files=["a.txt", "nope.txt"]), "t")


async def test_public_objects_over_https_are_read_anonymously(
    any_s3: AnyS3, make_cache: CacheFactory
) -> None:
    any_s3.bucket(
        "public-bucket",
        {
            "sd/dreamshaper/8/model.bin": os.urandom(300_000),
            "sd/dreamshaper/8/vae/config.json": b"{}",
        },
        public=True,
    )
    url = f"{any_s3.url}/public-bucket/sd/dreamshaper/8"
    async with make_cache(NOSANA_CACHE_SECURITY__ALLOW_PRIVATE_URLS="true") as cache:
        lease = await cache.acquire(s3res(url=url), holder="t")
        assert lease.view is not None
        assert (lease.view / "vae/config.json").read_bytes() == b"{}"
        assert lease.entry.details["credential"] == "anonymous"


async def test_job_urls_may_not_reach_private_addresses(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    s3.bucket("ssrf-bucket", {"x": b"secret"}, public=True)
    async with make_cache() as cache:
        with pytest.raises(UnsafeUpstream, match="private, loopback or link-local"):
            await cache.acquire(s3res(url=f"{s3.url}/ssrf-bucket/x"), holder="t")
        host_url = s3.url.replace("127.0.0.1", "localhost")
        with pytest.raises(UnsafeUpstream, match=r"localhost resolves to 127\.0\.0\.1"):
            await cache.acquire(s3res(url=f"{host_url}/ssrf-bucket/x"), holder="t")
        metadata = "http://169.254.169.254/latest/meta-data"
        with pytest.raises(UnsafeUpstream):
            await cache.acquire(s3res(url=metadata), holder="t")
        assert await cache.store.entries() == []  # refused before anything was recorded


async def test_wrong_credentials_say_which_key_and_never_the_secret(
    any_s3: AnyS3, make_cache: CacheFactory
) -> None:
    any_s3.bucket("private-bucket", {"m/w.bin": b"weights"})
    wrong = {
        "REGION": REGION,
        "ACCESS_KEY_ID": "AKIAWRONGKEY0000000",
        "SECRET_ACCESS_KEY": "nope-secret",
    }
    with any_s3.authentication():
        async with make_cache(s3=any_s3) as cache:
            with pytest.raises(UpstreamAuthError) as caught:
                await cache.acquire(s3res(url="s3://private-bucket/m", IAM=wrong), holder="t")
            assert "AKIAWRONGKEY0000000 (the resource's IAM)" in str(caught.value)
            assert "s3://private-bucket/m/" in str(caught.value)
            assert "nope-secret" not in str(caught.value)
            right = await cache.acquire(
                s3res(url="s3://private-bucket/m", IAM=any_s3.iam()), holder="t"
            )
            assert right.view is not None
            assert (right.view / "w.bin").read_bytes() == b"weights"


async def test_a_missing_bucket_is_not_found(any_s3: AnyS3, make_cache: CacheFactory) -> None:
    async with make_cache(s3=any_s3, **any_s3.operator_env()) as cache:
        with pytest.raises(UpstreamNotFound, match="NoSuchBucket") as caught:
            await cache.acquire(s3res(url="s3://no-such-bucket/x"), holder="t")
        assert "s3://no-such-bucket/x/: listing failed with access key" in str(caught.value)
        any_s3.bucket("empty-prefix-bucket", {"elsewhere/a": b"a"})
        with pytest.raises(UpstreamNotFound, match="no objects there"):
            await cache.acquire(s3res(url="s3://empty-prefix-bucket/models"), holder="t")


async def test_buckets_merge_into_one_view_and_shared_bytes_are_stored_once(
    any_s3: AnyS3, make_cache: CacheFactory
) -> None:
    shared = os.urandom(200_000)
    any_s3.bucket("merge-a", {"x/w.bin": shared, "x/a.txt": b"a"})
    any_s3.bucket("merge-b", {"y/copy.bin": shared, "y/b.txt": b"b"})
    resource = s3res(
        buckets=[{"url": "s3://merge-a/x"}, {"url": "s3://merge-b/y", "files": ["copy.bin"]}]
    )
    async with make_cache(s3=any_s3, **any_s3.operator_env()) as cache:
        lease = await cache.acquire(resource, holder="t")
        assert lease.view is not None
        assert sorted(p.name for p in lease.view.iterdir()) == ["a.txt", "copy.bin", "w.bin"]
        assert len(list(cache.store.paths.blobs.glob("*/*"))) == 2


async def test_s3_sha256_checksums_are_used_and_find_blobs_already_here(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    """On moto only: s3rver keeps no checksums (a HEAD in checksum mode sends none back)."""
    data = os.urandom(3 * MB)
    client = s3.client()
    for bucket in ("checksum-a", "checksum-b"):
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="m/w.bin", Body=data, ChecksumAlgorithm="SHA256")
    async with make_cache(s3=s3, **s3.operator_env()) as cache:
        await cache.acquire(s3res(url="s3://checksum-a/m"), holder="t")
        received = cache.sources.transfer.bytes_received
        lease = await cache.acquire(s3res(url="s3://checksum-b/m"), holder="t")
        assert cache.sources.transfer.bytes_received == received  # found by its sha256
        assert lease.view is not None
        assert (lease.view / "w.bin").read_bytes() == data


async def test_an_object_uploaded_with_the_sdks_default_crc32_is_fetched(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    """Against a real S3 implementation's listing and headers: boto3 now sends a CRC32 with
    every upload, which S3 keeps and the daemon checks. On moto only: s3rver keeps none."""
    data = os.urandom(9 * MB)
    client = s3.client()
    client.create_bucket(Bucket="crc-default")
    client.put_object(Bucket="crc-default", Key="m/w.bin", Body=data)
    head = client.head_object(Bucket="crc-default", Key="m/w.bin", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32")  # what the daemon will be checking against
    async with make_cache(s3=s3, **s3.operator_env()) as cache:
        lease = await cache.acquire(s3res(url="s3://crc-default/m"), holder="t")
        assert lease.view is not None
        assert (lease.view / "w.bin").read_bytes() == data
