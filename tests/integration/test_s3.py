"""S3 prefixes through the cache, against moto's S3 server."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os

import pytest
from boto3.s3.transfer import TransferConfig

from daemon.clock import SystemClock
from daemon.errors import (
    UnsafeUpstream,
    UpstreamAuthError,
    UpstreamIntegrityError,
    UpstreamNotFound,
)
from daemon.resources import S3Resource, parse_resource
from tests.fakes.faults import Faults
from tests.fakes.server import ThreadedServers
from tests.fakes.static_host import StaticHost
from tests.integration.conftest import CacheFactory
from tests.peers.s3 import REGION, S3Peer

MB = 1024 * 1024


def s3res(**fields: object) -> S3Resource:
    resource = parse_resource({"type": "S3", **fields})
    assert isinstance(resource, S3Resource)
    return resource


async def test_a_prefix_with_nested_keys_and_more_than_1000_objects(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
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
        rows = await cache.store.files(lease.entry.id)
        assert rows[0]["sha256"] == hashlib.sha256(data).hexdigest()


async def test_files_pick_objects_and_a_missing_one_is_named(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    s3.bucket("files-bucket", {"p/a.txt": b"a", "p/b/c.txt": b"c", "p/d.txt": b"d"})
    async with make_cache(s3=s3, **s3.operator_env()) as cache:
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
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    s3.bucket(
        "public-bucket",
        {
            "sd/dreamshaper/8/model.bin": os.urandom(300_000),
            "sd/dreamshaper/8/vae/config.json": b"{}",
        },
        public=True,
    )
    url = f"{s3.url}/public-bucket/sd/dreamshaper/8"
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
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    s3.bucket("private-bucket", {"m/w.bin": b"weights"})
    wrong = {
        "REGION": REGION,
        "ACCESS_KEY_ID": "AKIAWRONGKEY0000000",
        "SECRET_ACCESS_KEY": "nope-secret",
    }
    with s3.authentication():
        async with make_cache(s3=s3) as cache:
            with pytest.raises(UpstreamAuthError) as caught:
                await cache.acquire(s3res(url="s3://private-bucket/m", IAM=wrong), holder="t")
            assert "AKIAWRONGKEY0000000 (the resource's IAM)" in str(caught.value)
            assert "nope-secret" not in str(caught.value)
            right = await cache.acquire(
                s3res(url="s3://private-bucket/m", IAM=s3.iam()), holder="t"
            )
            assert right.view is not None
            assert (right.view / "w.bin").read_bytes() == b"weights"


async def test_a_missing_bucket_is_not_found(s3: S3Peer, make_cache: CacheFactory) -> None:
    async with make_cache(s3=s3, **s3.operator_env()) as cache:
        with pytest.raises(UpstreamNotFound, match="NoSuchBucket"):
            await cache.acquire(s3res(url="s3://no-such-bucket/x"), holder="t")
        s3.bucket("empty-prefix-bucket", {"elsewhere/a": b"a"})
        with pytest.raises(UpstreamNotFound, match="no objects there"):
            await cache.acquire(s3res(url="s3://empty-prefix-bucket/models"), holder="t")


async def test_listing_refused_with_files_falls_back_to_plain_get(
    servers: ThreadedServers, make_cache: CacheFactory
) -> None:
    """A bucket behind its own domain (like models.nosana.io): objects by URL, no listing."""
    host = StaticHost(servers)
    weights = host.put("stable-diffusion/dreamshaper/8/model.safetensors", os.urandom(2 * MB))
    host.put("stable-diffusion/dreamshaper/8/vae/config.json", b"{}")
    url = f"{host.url}/stable-diffusion/dreamshaper/8"
    async with make_cache(NOSANA_CACHE_SECURITY__ALLOW_PRIVATE_URLS="true") as cache:
        with pytest.raises(UpstreamAuthError, match="give `files`"):
            await cache.acquire(s3res(url=url), holder="t")
        lease = await cache.acquire(
            s3res(url=url, files=["model.safetensors", "vae/config.json"]), holder="t"
        )
        assert lease.view is not None
        assert (lease.view / "model.safetensors").read_bytes() == weights.read()
        assert (lease.view / "vae/config.json").read_bytes() == b"{}"
    gets = host.traffic.count("GET /stable-diffusion/dreamshaper/8/model.safetensors")
    assert gets == 1


async def test_buckets_merge_into_one_view_and_shared_bytes_are_stored_once(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    shared = os.urandom(200_000)
    s3.bucket("merge-a", {"x/w.bin": shared, "x/a.txt": b"a"})
    s3.bucket("merge-b", {"y/copy.bin": shared, "y/b.txt": b"b"})
    resource = s3res(
        buckets=[{"url": "s3://merge-a/x"}, {"url": "s3://merge-b/y", "files": ["copy.bin"]}]
    )
    async with make_cache(s3=s3, **s3.operator_env()) as cache:
        lease = await cache.acquire(resource, holder="t")
        assert lease.view is not None
        assert sorted(p.name for p in lease.view.iterdir()) == ["a.txt", "copy.bin", "w.bin"]
        assert len(list(cache.store.paths.blobs.glob("*/*"))) == 2


def test_nosana_bucket_urls_are_rewritten_and_s3_hosts_map_domains() -> None:
    from daemon.settings import load_settings
    from daemon.sources.s3 import S3
    from daemon.sources.transfer import Transfer

    settings = load_settings(
        None,
        {
            "HOME": "/tmp",
            "NOSANA_CACHE_S3__HOSTS": (
                '{ "models.nosana.io" = { endpoint_url = "http://127.0.0.1:9", bucket = "nos" } }'
            ),
        },
    )
    s3 = S3(settings.s3, Transfer(settings.download, allow_private=False, clock=SystemClock()))
    request, resolver = s3.request(s3res(url="s3://nos-ai-models-qllsn32u/stable-diffusion/x"))
    [place] = resolver.places
    assert (place.endpoint, place.bucket, place.prefix) == (
        "http://127.0.0.1:9",
        "nos",
        "stable-diffusion/x/",
    )
    assert place.trusted
    same, _ = s3.request(s3res(url="https://models.nosana.io/stable-diffusion/x/"))
    assert same.key == request.key
    _, resolver2 = s3.request(s3res(url="https://other.example/bkt/a/b"))
    assert (resolver2.places[0].bucket, resolver2.places[0].prefix) == ("bkt", "a/b/")
    assert not resolver2.places[0].trusted


async def test_s3_sha256_checksums_are_used_and_find_blobs_already_here(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
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


async def test_twenty_concurrent_requests_for_a_prefix_make_one_download(
    servers: ThreadedServers, make_cache: CacheFactory
) -> None:
    host = StaticHost(servers, listing=True)
    objects = {
        f"bkt/herd/{name}": os.urandom(size)
        for name, size in (("a.bin", 2 * MB), ("b.bin", 300_000), ("c/d.txt", 10))
    }
    for path, data in objects.items():
        host.put(path, data)
    async with make_cache(NOSANA_CACHE_S3__ENDPOINT_URL=host.url) as cache:
        leases = await asyncio.gather(
            *(cache.acquire(s3res(url="s3://bkt/herd"), holder=f"job:{i}") for i in range(20))
        )
    assert len({lease.entry.id for lease in leases}) == 1
    for path in objects:
        assert host.traffic.count(f"GET /{path}") == 1, path
    assert host.traffic.count("GET /bkt") == 1  # one listing


async def test_a_crc_s3_keeps_is_checked_instead_of_the_md5_etag(
    servers: ThreadedServers, make_cache: CacheFactory
) -> None:
    """A large object's CRC64NVME (S3 keeps one of every object written since late 2024) is
    what its bytes are checked against: here its ETag is not its MD5 (as with SSE-KMS), so
    only the CRC can vouch for it, and wrong bytes are refused naming the CRC. A small object
    is not worth the HEAD and keeps its MD5 ETag."""
    host = StaticHost(servers, listing=True)
    big, small = os.urandom(9 * MB), os.urandom(MB)
    host.put("bkt/crc/big.bin", big, checksum="CRC64NVME", etag="0" * 32)
    host.put("bkt/crc/small.bin", small, checksum="CRC64NVME")
    host.put("bkt/bad/big.bin", big, checksum="CRC32", etag="1" * 32)
    host.faults["bkt/bad/big.bin"] = Faults(corrupt=True)
    async with make_cache(NOSANA_CACHE_S3__ENDPOINT_URL=host.url) as cache:
        lease = await cache.acquire(s3res(url="s3://bkt/crc"), holder="t")
        assert lease.view is not None
        assert (lease.view / "big.bin").read_bytes() == big
        assert (lease.view / "small.bin").read_bytes() == small
        assert host.traffic.count("HEAD /bkt/crc/big.bin") == 1
        assert host.traffic.count("HEAD /bkt/crc/small.bin") == 0

        with pytest.raises(UpstreamIntegrityError, match=r"CRC32 [0-9a-f]+, expected"):
            await cache.acquire(s3res(url="s3://bkt/bad"), holder="t")
        assert not list(cache.store.paths.tmp.iterdir())


async def test_an_object_uploaded_with_the_sdks_default_crc32_is_fetched(
    s3: S3Peer, make_cache: CacheFactory
) -> None:
    """Against a real S3 implementation's listing and headers: boto3 now sends a CRC32 with
    every upload, which S3 keeps and the daemon checks."""
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
