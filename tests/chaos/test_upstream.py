"""Upstream faults at the content host: 429 with Retry-After, bursts of 5xx, a trickle, a
Content-Length that promises more than comes. Each ends in the right bytes or a clear error,
within a bounded time, with nothing partial left behind.

The HF content host is the stage; S3 and Ollama blobs go through the same downloader
(sources/transfer.py), and resets and stalls are covered by the integration suite.
"""

from __future__ import annotations

import time

import pytest

from daemon.cache import Cache
from daemon.errors import UpstreamUnavailable
from daemon.resources import HFResource, parse_resource
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.integration.conftest import CacheFactory

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
    assert [e.state.value for e in await cache.store.entries()] in ([], ["failed"])
    assert list(cache.store.paths.blobs.glob("*/*")) == []
    assert list(cache.store.paths.tmp.iterdir()) == []


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
