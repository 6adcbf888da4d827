"""S3 through the S3-like hosts of tests/fakes: a bucket behind its own domain (no listing),
CRCs as S3 keeps them, a herd of requests, and a busy control plane (retried as transfers are,
Retry-After honoured; refusals never retried). The S3 implementations are in test_s3.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import pytest

from daemon.errors import UpstreamAuthError, UpstreamIntegrityError, UpstreamUnavailable
from daemon.resources import S3Resource, parse_resource
from daemon.util.clock import SystemClock
from tests.fakes.faults import Faults
from tests.fakes.server import ThreadedServers
from tests.fakes.static_host import StaticHost
from tests.integration.conftest import CacheFactory

MB = 1024 * 1024


def s3res(**fields: object) -> S3Resource:
    resource = parse_resource({"type": "S3", **fields})
    assert isinstance(resource, S3Resource)
    return resource


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
    clock = SystemClock()
    s3 = S3(settings.s3, Transfer(settings.download, allow_private=False, clock=clock), clock)
    fetch = s3.request(s3res(url="s3://nos-ai-models-qllsn32u/stable-diffusion/x"))
    [place] = fetch.resolver.places
    assert (place.endpoint, place.bucket, place.prefix) == (
        "http://127.0.0.1:9",
        "nos",
        "stable-diffusion/x/",
    )
    assert place.trusted
    same = s3.request(s3res(url="https://models.nosana.io/stable-diffusion/x/")).request
    assert same.key == fetch.request.key
    resolver2 = s3.request(s3res(url="https://other.example/bkt/a/b")).resolver
    assert (resolver2.places[0].bucket, resolver2.places[0].prefix) == ("bkt", "a/b/")
    assert not resolver2.places[0].trusted


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


async def test_a_busy_listing_is_retried_after_what_retry_after_asks(
    servers: ThreadedServers, make_cache: CacheFactory
) -> None:
    host = StaticHost(servers, listing=True)
    host.put("bkt/busy/w.bin", b"weights")
    host.listing_faults = Faults(fail_times=2, fail_status=503, retry_after="1")
    async with make_cache(NOSANA_CACHE_S3__ENDPOINT_URL=host.url) as cache:
        started = time.monotonic()
        lease = await cache.acquire(s3res(url="s3://bkt/busy"), holder="t")
        assert time.monotonic() - started >= 2.0  # two waits of at least the second it asked
        assert lease.view is not None
        assert (lease.view / "w.bin").read_bytes() == b"weights"
    assert host.traffic.count("GET /bkt") == 3


async def test_a_listing_that_stays_busy_fails_naming_the_bucket_and_the_attempts(
    servers: ThreadedServers, make_cache: CacheFactory
) -> None:
    host = StaticHost(servers, listing=True)
    host.put("bkt/down/w.bin", b"weights")
    host.listing_faults = Faults(fail_times=1000, fail_status=500)
    async with make_cache(
        NOSANA_CACHE_S3__ENDPOINT_URL=host.url, NOSANA_CACHE_DOWNLOAD__MAX_RETRIES="2"
    ) as cache:
        with pytest.raises(UpstreamUnavailable) as failed:
            await cache.acquire(s3res(url="s3://bkt/down"), holder="t")
    assert "s3://bkt/down/: listing failed with" in str(failed.value)
    assert "answered 500 (InternalError)" in str(failed.value)
    assert "after 3 attempts" in str(failed.value)
    assert host.traffic.count("GET /bkt") == 3  # 1 + download.max_retries


async def test_a_refused_listing_is_asked_once(
    servers: ThreadedServers, make_cache: CacheFactory
) -> None:
    host = StaticHost(servers)  # 403 AccessDenied to every listing
    host.put("bkt/closed/w.bin", b"weights")
    async with make_cache(NOSANA_CACHE_S3__ENDPOINT_URL=host.url) as cache:
        with pytest.raises(UpstreamAuthError, match=r"answered 403 \(AccessDenied"):
            await cache.acquire(s3res(url="s3://bkt/closed"), holder="t")
    assert host.traffic.count("GET /bkt") == 1


async def test_a_bucket_in_another_region_is_listed_headed_and_fetched_signed_for_it(
    servers: ThreadedServers, make_cache: CacheFactory
) -> None:
    """The operator's region is us-east-1, the bucket's eu-west-1: botocore follows S3's
    region redirect for the listing and the HEADs, and the data plane signs its GETs for the
    region the control plane ended up with."""
    host = StaticHost(servers, listing=True, region="eu-west-1")
    big = os.urandom(9 * MB)
    host.put("bkt/far/big.bin", big, checksum="CRC64NVME")  # large: takes a HEAD
    host.put("bkt/far/small.txt", b"small")
    async with make_cache(
        NOSANA_CACHE_S3__ENDPOINT_URL=host.url,
        NOSANA_CACHE_S3__REGION="us-east-1",
        NOSANA_CACHE_S3__ACCESS_KEY_ID="AKIAOPERATOR",
        NOSANA_CACHE_S3__SECRET_ACCESS_KEY="operator-secret",
    ) as cache:
        lease = await cache.acquire(s3res(url="s3://bkt/far"), holder="t")
        assert lease.view is not None
        assert (lease.view / "big.bin").read_bytes() == big
        assert (lease.view / "small.txt").read_bytes() == b"small"
        files = {file.path: file for file in await cache.store.files(lease.entry.id)}
        assert files["big.bin"].sha256 == hashlib.sha256(big).hexdigest()
    assert host.traffic.count("GET /bkt") == 2  # the listing: refused once, then answered
    assert host.traffic.count("HEAD /bkt/far/big.bin") == 1  # botocore kept the bucket's region
