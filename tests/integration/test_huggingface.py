"""HF repos through the cache, against the faithful fake hub and its content host."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from daemon.errors import UpstreamAuthError, UpstreamIntegrityError, UpstreamNotFound
from daemon.resources import HFResource, parse_resource
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.integration.conftest import CacheFactory

MB = 1024 * 1024


def hf(repo: str, **fields: object) -> HFResource:
    resource = parse_resource({"type": "HF", "repo": repo, **fields})
    assert isinstance(resource, HFResource)
    return resource


def repo_files(seed: int) -> dict[str, bytes | Content]:
    return {
        "config.json": b'{"model_type": "llama"}',
        "tokenizer/tokenizer.json": os.urandom(20_000),
        "tokenizer/special/tokens.txt": b"<s>\n</s>\n",
        "model-00001.safetensors": Content.generated(5 * MB + 123, seed=seed),
        "model-00002.safetensors": Content.generated(2 * MB, seed=seed + 1),
        "README.md": b"# a model\n",
    }


def read(content: bytes | Content) -> bytes:
    return content.read() if isinstance(content, Content) else content


async def test_a_repo_with_folders_and_lfs_files_lands_byte_for_byte(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    files = repo_files(seed=10)
    commit = hub.commit("org/nested", files)
    async with make_cache(hub=hub) as cache:
        lease = await cache.acquire(hf("org/nested"), holder="test")
        assert lease.view is not None
        assert lease.entry.version == commit
        assert lease.entry.details["commit"] == commit
        for path, data in files.items():
            assert (lease.view / path).read_bytes() == read(data), path
        assert lease.entry.file_count == len(files)
    ours = {f"GET /lfs/{c.sha256}" for c in files.values() if isinstance(c, Content)}
    lfs = [k for k in hub.cdn_traffic.requests if k in ours]  # the hub is shared by the session
    assert len(lfs) == 2


async def test_the_token_goes_to_the_hub_and_never_to_the_content_host(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    weights = Content.generated(MB, seed=20)
    hub.commit("org/gated", {"w.safetensors": weights, "config.json": b"{}"}, gated=True)
    async with make_cache(hub=hub) as cache:
        with pytest.raises(UpstreamAuthError, match="gated: accept its terms"):
            await cache.acquire(hf("org/gated"), holder="test")
        before = len(hub.cdn_traffic.authorizations)
        lease = await cache.acquire(hf("org/gated", accessToken=hub.token), holder="test")
        assert lease.view is not None
        assert (lease.view / "w.safetensors").read_bytes() == weights.read()
    assert f"Bearer {hub.token}" in hub.traffic.authorizations
    assert not any(hub.cdn_traffic.authorizations[before:])


async def test_a_wrong_token_is_an_auth_error(hub: FakeHub, make_cache: CacheFactory) -> None:
    hub.commit("org/gated2", {"w.bin": b"x"}, gated=True)
    async with make_cache(hub=hub) as cache:
        with pytest.raises(UpstreamAuthError) as caught:
            await cache.acquire(hf("org/gated2", accessToken="hf_wrong"), holder="t")
    assert "hf_wrong" not in str(caught.value)


async def test_missing_repo_revision_and_file_are_clear_errors(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    hub.commit("org/present", {"a.txt": b"a"})
    async with make_cache(hub=hub) as cache:
        with pytest.raises(UpstreamNotFound, match="hf://org/absent: no such repo"):
            await cache.acquire(hf("org/absent"), holder="t")
        with pytest.raises(UpstreamNotFound, match="no revision 'v9'"):
            await cache.acquire(hf("org/present", revision="v9"), holder="t")
        with pytest.raises(UpstreamNotFound, match=r"no such file\(s\) at commit .*: b\.txt, c/d"):
            await cache.acquire(hf("org/present", files=["a.txt", "b.txt", "c/d"]), holder="t")


async def test_files_limit_the_entry_and_a_pinned_revision_is_its_own_entry(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    first = hub.commit("org/revs", {"a.txt": b"one", "b/c.txt": b"two", "w.bin": os.urandom(1000)})
    hub.commit("org/revs", {"a.txt": b"ONE", "b/c.txt": b"two"})
    async with make_cache(hub=hub) as cache:
        subset = await cache.acquire(hf("org/revs", files=["b/c.txt"]), holder="t")
        assert subset.view is not None
        assert sorted(p.name for p in subset.view.rglob("*") if p.is_file()) == ["c.txt"]
        old = await cache.acquire(hf("org/revs", revision=first), holder="t")
        new = await cache.acquire(hf("org/revs"), holder="t")
        assert old.view is not None
        assert new.view is not None
        assert (old.view / "a.txt").read_bytes() == b"one"
        assert (old.view / "w.bin").exists()
        assert (new.view / "a.txt").read_bytes() == b"ONE"
        assert not (new.view / "w.bin").exists()
        assert len({subset.entry.id, old.entry.id, new.entry.id}) == 3


async def test_main_moving_on_is_a_new_entry_that_fetches_only_what_changed(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    weights = Content.generated(3 * MB, seed=30)
    hub.commit("org/moving", {"w.safetensors": weights, "v.txt": b"1"})
    async with make_cache(hub=hub, NOSANA_CACHE_STORE__TTL="1s") as cache:
        first = await cache.acquire(hf("org/moving"), holder="t")
        await cache.store.release(first)
        hub.commit("org/moving", {"w.safetensors": weights, "v.txt": b"2"})
        await asyncio.sleep(1.1)  # the entry expires: the next request asks the hub again
        second = await cache.acquire(hf("org/moving"), holder="t")
        assert second.entry.id != first.entry.id
        assert second.view is not None
        assert (second.view / "v.txt").read_bytes() == b"2"
    assert hub.cdn_traffic.count(f"GET /lfs/{weights.sha256}") == 1


async def test_twenty_concurrent_requests_make_one_upstream_download(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    weights = Content.generated(4 * MB, seed=40)
    hub.commit("org/herd", {"w.safetensors": weights, "config.json": b"{}"})
    hub.set_faults(weights, Faults(stall_after=0, stall_seconds=0.3, stall_times=1))
    async with make_cache(hub=hub) as cache:
        leases = await asyncio.gather(
            *(cache.acquire(hf("org/herd"), holder=f"job:{i}") for i in range(20))
        )
    assert len({lease.entry.id for lease in leases}) == 1
    assert hub.cdn_traffic.count(f"GET /lfs/{weights.sha256}") == 1
    assert (
        hub.traffic.count("GET /org/herd/resolve/" + leases[0].entry.version + "/config.json") == 1
    )
    assert hub.traffic.count("GET /api/models/org/herd/revision/main") == 1


async def test_identical_files_in_two_repos_are_stored_once(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    shared = Content.generated(2 * MB, seed=50)
    hub.commit("org/base", {"w.safetensors": shared})
    hub.commit("org/finetune", {"w.safetensors": shared, "adapter.bin": b"adapter"})
    async with make_cache(hub=hub) as cache:
        await cache.acquire(hf("org/base"), holder="t")
        await cache.acquire(hf("org/finetune"), holder="t")
        blobs = list(cache.store.paths.blobs.glob("*/*"))
    assert len(blobs) == 2
    assert hub.cdn_traffic.count(f"GET /lfs/{shared.sha256}") == 1


async def test_a_dropped_connection_resumes_with_range_where_it_stopped(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    weights = Content.generated(3 * MB, seed=60)
    hub.commit("org/drop", {"w.safetensors": weights})
    hub.set_faults(weights, Faults(drop_after=1_500_000, drop_times=1))
    async with make_cache(hub=hub, NOSANA_CACHE_DOWNLOAD__PART_SIZE="64MiB") as cache:
        lease = await cache.acquire(hf("org/drop"), holder="t")
        assert lease.view is not None
        assert (lease.view / "w.safetensors").read_bytes() == weights.read()
    ranges = [r for path, r in hub.cdn_traffic.ranges if path == f"/lfs/{weights.sha256}"]
    assert ranges[0] == f"bytes=0-{weights.size - 1}"
    resumed_at = int(ranges[1].removeprefix("bytes=").split("-")[0])
    assert 0 < resumed_at <= 1_500_000  # never from zero: only what was lost in flight


async def test_server_errors_are_retried_and_range_is_optional(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    flaky = Content.generated(MB + 5, seed=70)
    plain = Content.generated(3 * MB, seed=71)
    hub.commit("org/flaky", {"flaky.bin": flaky, "plain.bin": plain})
    hub.set_faults(flaky, Faults(fail_times=2))
    hub.set_faults(plain, Faults(ignore_range=True))
    async with make_cache(hub=hub, NOSANA_CACHE_DOWNLOAD__PART_SIZE="1MiB") as cache:
        lease = await cache.acquire(hf("org/flaky"), holder="t")
        assert lease.view is not None
        assert (lease.view / "flaky.bin").read_bytes() == flaky.read()
        assert (lease.view / "plain.bin").read_bytes() == plain.read()
    assert hub.cdn_traffic.count(f"GET /lfs/{flaky.sha256}") >= 4  # 2 failures, then 2 parts
    assert hub.cdn_traffic.count(f"GET /lfs/{plain.sha256}") == 1  # one stream, no parts


async def test_the_other_parts_start_on_the_first_parts_answer_not_its_end(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    """On a link that caps each connection, waiting for the whole first part before the
    others is one capped stream for a part's length: they go as soon as it answers 206."""
    weights = Content.generated(3 * MB, seed=72)
    hub.commit("org/parallel", {"w.safetensors": weights})
    release = threading.Event()
    hub.set_faults(weights, Faults(hold_after=256 * 1024, hold=release))  # every part held
    try:
        async with make_cache(hub=hub, NOSANA_CACHE_DOWNLOAD__PART_SIZE="1MiB") as cache:
            fetch = asyncio.ensure_future(cache.acquire(hf("org/parallel"), holder="t"))
            for _ in range(200):  # all three parts asked for while the first is held
                if len([p for p, _ in hub.cdn_traffic.ranges if weights.sha256 in p]) == 3:
                    break
                await asyncio.sleep(0.02)
            asked = [r for p, r in hub.cdn_traffic.ranges if weights.sha256 in p]
            release.set()
            lease = await fetch
            assert lease.view is not None
            assert (lease.view / "w.safetensors").read_bytes() == weights.read()
    finally:
        release.set()
    assert sorted(asked) == sorted(f"bytes={i * MB}-{(i + 1) * MB - 1}" for i in range(3))


async def test_wrong_bytes_from_the_content_host_store_nothing(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    weights = Content.generated(2 * MB, seed=80)
    hub.commit("org/corrupt", {"w.safetensors": weights})
    hub.set_faults(weights, Faults(corrupt=True))
    async with make_cache(hub=hub) as cache:
        with pytest.raises(UpstreamIntegrityError, match="sha256"):
            await cache.acquire(hf("org/corrupt"), holder="t")
        assert list(cache.store.paths.blobs.glob("*/*")) == []
        assert list(cache.store.paths.tmp.iterdir()) == []


async def test_a_dead_hub_is_unavailable_after_retries(
    hub: FakeHub, make_cache: CacheFactory
) -> None:
    from daemon.errors import UpstreamUnavailable

    hub.commit("org/dead", {"a": b"a"})
    hub.down = True
    try:
        async with make_cache(hub=hub, NOSANA_CACHE_DOWNLOAD__MAX_RETRIES="1") as cache:
            with pytest.raises(UpstreamUnavailable, match="hf://org/dead"):
                await cache.acquire(hf("org/dead"), holder="t")
    finally:
        hub.down = False
