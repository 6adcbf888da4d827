"""Upstream faults at the content host: 429 with Retry-After, bursts of 5xx, a trickle, a
Content-Length that promises more than comes. Each ends in the right bytes or a clear error,
within a bounded time, with nothing partial left behind.

First at the HF content host, then the same faults at an S3-compatible host and at the Ollama
registry (a real Distribution registry behind a fault-injecting proxy).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from daemon.cache import Cache
from daemon.errors import UpstreamUnavailable
from daemon.resources import HFResource, Resource, parse_resource
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.fakes.static_host import StaticHost
from tests.integration.conftest import CacheFactory
from tests.peers.ollama import MODEL, push_model
from tests.peers.registry import RegistryPeer

MB = 1024 * 1024
SLOW = {
    "NOSANA_CACHE_DOWNLOAD__STALL_TIMEOUT": "1s",
    "NOSANA_CACHE_DOWNLOAD__MIN_SPEED": "256KiB",
}


def hf(repo: str) -> HFResource:
    resource = parse_resource({"type": "HF", "repo": repo})
    assert isinstance(resource, HFResource)
    return resource


async def assert_nothing_left(cache: Cache) -> None:
    """Nothing that looks ready, no view, no temp file; blobs that did complete (another
    file of the entry) are whole and verified, and kept for the retry."""
    assert [e.state.value for e in await cache.store.entries()] in ([], ["failed"])
    assert list(cache.store.views.root.iterdir()) == []
    assert list(cache.store.paths.tmp.iterdir()) == []
    report = await cache.store.verify()
    assert report.corrupt == []
    assert report.missing == []


@pytest.mark.parametrize(
    ("retry_after", "least_wait"),
    [("1", 2.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("soon", 0.0), ("-5", 0.0)],
)
async def test_429_waits_as_long_as_retry_after_says_and_survives_a_bad_one(
    hub: FakeHub, make_cache: CacheFactory, retry_after: str, least_wait: float
) -> None:
    weights = Content.generated(2 * MB, seed=9100 + len(retry_after))
    repo = f"chaos/rate-limited-{len(retry_after)}"
    hub.commit(repo, {"w.safetensors": weights})
    hub.set_faults(weights, Faults(fail_times=2, fail_status=429, retry_after=retry_after))
    async with make_cache(hub=hub) as cache:
        started = time.monotonic()
        lease = await cache.acquire(hf(repo), holder="t")
        elapsed = time.monotonic() - started
        assert lease.view is not None
        assert (lease.view / "w.safetensors").read_bytes() == weights.read()
    assert hub.cdn_traffic.count(f"GET /lfs/{weights.sha256}") == 3
    assert least_wait <= elapsed < least_wait + 10


async def test_a_burst_of_5xx_is_ridden_out(hub: FakeHub, make_cache: CacheFactory) -> None:
    weights = Content.generated(3 * MB, seed=9201)
    hub.commit("chaos/burst", {"w.safetensors": weights})
    hub.set_faults(weights, Faults(fail_times=3, fail_status=503))
    async with make_cache(hub=hub) as cache:
        lease = await cache.acquire(hf("chaos/burst"), holder="t")
        assert lease.view is not None
        assert (lease.view / "w.safetensors").read_bytes() == weights.read()


async def test_an_endless_5xx_ends_in_a_clear_error_soon(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    weights = Content.generated(3 * MB, seed=9202)
    hub.commit("chaos/down", {"w.safetensors": weights})
    hub.set_faults(weights, Faults(fail_times=1000, fail_status=502))
    async with make_cache(hub=hub) as cache:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable, match="answered 502") as failed:
            await cache.acquire(hf("chaos/down"), holder="t")
        assert time.monotonic() - started < 30  # 4 retries, backoff at most ~6 s in all
        assert "w.safetensors" in str(failed.value)
        await assert_nothing_left(cache)
        assert list(cache.store.paths.blobs.glob("*/*")) == []  # its only file: nothing
    assert hub.cdn_traffic.count(f"GET /lfs/{weights.sha256}") == 5  # 1 + max_retries


async def test_a_trickle_is_dropped_and_resumed_where_it_stopped(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    weights = Content.generated(2 * MB, seed=9301)
    hub.commit("chaos/trickle", {"w.safetensors": weights})
    hub.set_faults(weights, Faults(trickle_bytes_per_s=40_000, trickle_times=1))
    async with make_cache(hub=hub, **SLOW) as cache:
        started = time.monotonic()
        lease = await cache.acquire(hf("chaos/trickle"), holder="t")
        assert time.monotonic() - started < 10
        assert lease.view is not None
        assert (lease.view / "w.safetensors").read_bytes() == weights.read()
    ranges = [r for path, r in hub.cdn_traffic.ranges if path == f"/lfs/{weights.sha256}"]
    resumed_at = int(ranges[1].removeprefix("bytes=").split("-")[0])
    assert 0 < resumed_at < weights.size  # what trickled in was kept


async def test_a_host_that_always_trickles_fails_clearly(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    weights = Content.generated(2 * MB, seed=9302)
    hub.commit("chaos/always-slow", {"w.safetensors": weights})
    hub.set_faults(weights, Faults(trickle_bytes_per_s=20_000, trickle_times=1000))
    async with make_cache(hub=hub, **SLOW) as cache:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable, match=r"slower than download\.min_speed"):
            await cache.acquire(hf("chaos/always-slow"), holder="t")
        assert time.monotonic() - started < 30
        await assert_nothing_left(cache)


async def test_a_content_length_that_promises_too_much(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    weights = Content.generated(3 * MB, seed=9401)
    hub.commit("chaos/long-promise", {"w.safetensors": weights})
    hub.set_faults(weights, Faults(overstate_length_times=2))
    async with make_cache(hub=hub) as cache:
        lease = await cache.acquire(hf("chaos/long-promise"), holder="t")
        assert lease.view is not None
        assert (lease.view / "w.safetensors").read_bytes() == weights.read()


# -- the same faults at an S3-compatible host and at the Ollama registry ---------------------


@dataclass
class Stage:
    """One upstream serving one 3 MiB file the test can make misbehave."""

    resource: Resource
    data: bytes
    path_in_view: str
    env: dict[str, str]
    faults: Callable[[Faults], None]


def s3_stage(servers: ThreadedServers, name: str) -> Stage:
    host = StaticHost(servers, listing=True)
    data = os.urandom(3 * MB)
    host.put(f"bucket/{name}/w.bin", data)
    return Stage(
        resource=parse_resource({"type": "S3", "url": f"{host.url}/bucket/{name}"}),
        data=data,
        path_in_view="w.bin",
        env={"NOSANA_CACHE_SECURITY__ALLOW_PRIVATE_URLS": "true"},
        faults=lambda f: host.faults.__setitem__(f"bucket/{name}/w.bin", f),
    )


def ollama_stage(servers: ThreadedServers, registry: RegistryPeer, name: str) -> Stage:
    weights = os.urandom(3 * MB)
    push_model(registry.url, f"library/{name}", "latest", {MODEL: weights})
    proxy = FaultyProxy(servers, registry.url)
    digest = hashlib.sha256(weights).hexdigest()
    return Stage(
        resource=parse_resource({"type": "Ollama", "model": name}),
        data=weights,
        path_in_view=f"blobs/sha256-{digest}",
        env={"NOSANA_CACHE_OLLAMA__REGISTRY": proxy.url},
        faults=lambda f: proxy.faults.__setitem__(digest, f),
    )


FAULTS: dict[str, tuple[Callable[[], Faults], bool]] = {
    # name: (the fault, whether the download must still succeed)
    "429-retry-after": (lambda: Faults(fail_times=2, fail_status=429, retry_after="1"), True),
    "5xx-burst": (lambda: Faults(fail_times=3, fail_status=503), True),
    "reset-mid-body": (lambda: Faults(drop_after=MB, drop_times=2), True),
    "trickle-once": (lambda: Faults(trickle_bytes_per_s=40_000, trickle_times=1), True),
    "always-5xx": (lambda: Faults(fail_times=1000, fail_status=502), False),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("upstream", ["s3", "ollama"])
async def test_s3_and_the_ollama_registry_under_the_same_faults(
    servers: ThreadedServers,
    registry: RegistryPeer,
    make_cache: CacheFactory,
    upstream: str,
    fault: str,
) -> None:
    name = f"chaos-{upstream}-{fault}"
    stage = s3_stage(servers, name) if upstream == "s3" else ollama_stage(servers, registry, name)
    make_fault, succeeds = FAULTS[fault]
    stage.faults(make_fault())
    async with make_cache(**SLOW, **stage.env) as cache:
        started = time.monotonic()
        if succeeds:
            lease = await cache.acquire(stage.resource, holder="t")
            assert lease.view is not None
            assert (lease.view / stage.path_in_view).read_bytes() == stage.data
        else:
            with pytest.raises(UpstreamUnavailable, match="answered 502"):
                await cache.acquire(stage.resource, holder="t")
            await assert_nothing_left(cache)
        assert time.monotonic() - started < 30
