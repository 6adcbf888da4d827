"""The site store between nodes, in-process: two nodes with separate stores share a bucket of
moto's server; the upstreams (the test bed's hub, an S3-like host, the registry serving Ollama
models) count every request and byte they serve."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from daemon.resources import HFResource, OllamaResource, S3Resource, parse_resource
from daemon.util.clock import ManualClock
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.fakes.static_host import StaticHost
from tests.peers.ollama import LICENSE, MODEL, PARAMS, TEMPLATE, push_model
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer
from tests.site_nodes import AnyS3, new_bucket, node, site_env, site_objects

MB = 1024 * 1024


def hf(repo: str, **fields: Any) -> HFResource:
    resource = parse_resource({"type": "HF", "repo": repo, **fields})
    assert isinstance(resource, HFResource)
    return resource


def tree(view: Path | None) -> dict[str, bytes]:
    assert view is not None
    return {str(p.relative_to(view)): p.read_bytes() for p in view.rglob("*") if p.is_file()}


def manifests(s3: AnyS3, bucket: str) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in site_objects(s3, bucket, "manifests/").items()}


async def test_node_b_builds_an_entry_node_a_fetched_without_asking_upstream(
    tmp_path: Path, hub: FakeHub, any_s3: AnyS3
) -> None:
    """On both S3 implementations of the test bed (s3rver has no conditional writes: every
    node is elected, and nothing else changes)."""
    s3 = any_s3
    big = Content.generated(20 * MB, seed=1801)  # three verified chunks
    repo = f"site/llm-{s3.name}"
    hub.commit(
        repo,
        {"model.safetensors": big, "config.json": b'{"a": 1}', "sub/tokenizer.json": b"{}"},
    )
    bucket = new_bucket(s3)
    env = site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}
    async with node(tmp_path / "a", env) as a:
        first = await a.cache.acquire(hf(repo), holder="t")
        await a.uploaded()
        assert a.site.counters.manifests_uploaded == 1
        assert a.site.counters.blobs_uploaded == 3
    hub_calls, cdn_bytes = hub.traffic.total(), hub.cdn_traffic.body_bytes
    async with node(tmp_path / "b", env) as b:
        second = await b.cache.acquire(hf(repo), holder="t")
        assert tree(second.view) == tree(first.view)
        assert second.entry.id == first.entry.id  # the same request at the same commit
        assert second.entry.version == first.entry.version
        assert b.site.counters.manifest_hits == 1
        assert b.site.counters.bytes_from_site == big.size + 10
        await b.uploaded()
        assert b.site.counters.bytes_uploaded == 0  # nothing the site store lacked
        swept = await b.site.sweep()  # nothing expired
        assert (swept.manifests_removed, swept.blobs_removed) == (0, 0)
    assert hub.traffic.total() == hub_calls  # not even the revision's metadata
    assert hub.cdn_traffic.body_bytes == cdn_bytes
    objects = site_objects(s3, bucket)
    blobs = {k for k in objects if k.startswith("blobs/sha256/")}
    assert blobs == {
        f"blobs/sha256/{c.sha256}" for c in (big, Content.of(b'{"a": 1}'), Content.of(b"{}"))
    }
    (key, manifest), *others = manifests(s3, bucket).items()
    assert not others
    assert first.entry.downloaded_at is not None
    downloaded = int(first.entry.downloaded_at)
    assert key == f"manifests/{first.entry.request_key}/{first.entry.id}.{downloaded}.json"
    assert manifest["version"] == first.entry.version
    assert manifest["first_downloaded_at"] == first.entry.downloaded_at
    files = {f["path"]: f for f in manifest["files"]}
    assert files["model.safetensors"]["sha256"] == big.sha256
    assert len(files["model.safetensors"]["chunks"]) == 3
    assert not [k for k in objects if k.startswith("fetching/")]  # the claim was released


async def test_s3_and_ollama_entries_are_shared_too(
    tmp_path: Path, servers: ThreadedServers, s3: S3Peer, registry: RegistryPeer
) -> None:
    host = StaticHost(servers, listing=True)
    host.put("models/sd/unet.bin", os.urandom(3 * MB))
    host.put("models/sd/config.json", b"{}")
    model = push_model(
        registry.url,
        "library/sitemodel",
        "latest",
        {MODEL: os.urandom(MB), TEMPLATE: b"t", PARAMS: b"{}", LICENSE: b"MIT"},
    )
    ollama_registry = FaultyProxy(servers, registry.url)
    s3_resource = parse_resource({"type": "S3", "url": f"{host.url}/models/sd"})
    ollama = parse_resource({"type": "Ollama", "model": "sitemodel"})
    assert isinstance(s3_resource, S3Resource)
    assert isinstance(ollama, OllamaResource)
    env = site_env(s3, new_bucket(s3)) | {"NOSANA_CACHE_OLLAMA__REGISTRY": ollama_registry.url}
    async with node(tmp_path / "a", env) as a:
        views = [tree((await a.cache.acquire(r, holder="t")).view) for r in (s3_resource, ollama)]
        await a.uploaded()
    s3_calls, ollama_calls = host.traffic.total(), ollama_registry.traffic.total()
    async with node(tmp_path / "b", env) as b:
        again = [tree((await b.cache.acquire(r, holder="t")).view) for r in (s3_resource, ollama)]
    assert again == views
    assert host.traffic.total() == s3_calls
    assert ollama_registry.traffic.total() == ollama_calls
    assert "manifests/registry.ollama.ai/library/sitemodel/latest" in views[1]
    assert views[1]["manifests/registry.ollama.ai/library/sitemodel/latest"] == model.manifest


async def test_a_damaged_chunk_is_never_served_but_fetched_upstream_and_replaced(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    big = Content.generated(20 * MB, seed=1802)
    small = b"tokenizer " * 1000
    hub.commit("site/damaged", {"model.safetensors": big, "tokenizer.json": small})
    bucket = new_bucket(s3)
    env = site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}
    async with node(tmp_path / "a", env) as a:
        first = await a.cache.acquire(hf("site/damaged"), holder="t")
        await a.uploaded()
    client = s3.client()
    data = bytearray(big.read())
    data[9 * MB] ^= 0xFF  # in the second chunk (8 to 16 MiB)
    client.put_object(Bucket=bucket, Key=f"nodes/blobs/sha256/{big.sha256}", Body=bytes(data))
    small_key = f"nodes/blobs/sha256/{Content.of(small).sha256}"
    client.delete_object(Bucket=bucket, Key=small_key)  # and one blob gone altogether
    cdn_bytes, ranges = hub.cdn_traffic.body_bytes, len(hub.cdn_traffic.ranges)
    async with node(tmp_path / "b", env) as b:
        second = await b.cache.acquire(hf("site/damaged"), holder="t")
        assert tree(second.view) == tree(first.view)
        assert b.site.counters.damaged == 1
        assert b.site.counters.fallbacks == 2
        # Only the damaged chunk came from the content host, not the whole file.
        assert hub.cdn_traffic.body_bytes - cdn_bytes == 8 * MB
        assert hub.cdn_traffic.ranges[ranges:] == [
            (f"/lfs/{big.sha256}", f"bytes={8 * MB}-{16 * MB - 1}")
        ]
        await b.uploaded()
    repaired = client.get_object(Bucket=bucket, Key=f"nodes/blobs/sha256/{big.sha256}")
    assert repaired["Body"].read() == big.read()
    assert client.get_object(Bucket=bucket, Key=small_key)["Body"].read() == small


async def test_private_entries_are_not_shared_unless_asked_and_then_by_credential_only(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    hub.commit("site/private", {"weights.bin": os.urandom(MB)}, private=True)
    hub.commit("site/public", {"weights.bin": os.urandom(MB)})
    with_token = {"accessToken": hub.token}
    bucket = new_bucket(s3)
    env = site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}
    async with node(tmp_path / "a", env) as a:
        await a.cache.acquire(hf("site/private", **with_token), holder="t")
        await a.cache.acquire(hf("site/public", **with_token), holder="t")  # a token: private
        await a.uploaded()
        assert a.site.counters.manifest_misses == 0  # not even looked up
    assert site_objects(s3, bucket) == {}

    shared = site_env(s3, bucket, NOSANA_CACHE_SITE__SHARE_PRIVATE="true") | {
        "HF_ENDPOINT": hub.url
    }
    async with node(tmp_path / "c", shared) as c:
        await c.cache.acquire(hf("site/public", **with_token), holder="t")
        await c.uploaded()
    assert len(manifests(s3, bucket)) == 1
    async with node(tmp_path / "d", shared) as d:
        calls = hub.traffic.total()
        await d.cache.acquire(hf("site/public", **with_token), holder="t")  # same credential
        assert hub.traffic.total() == calls
        await d.cache.acquire(hf("site/public"), holder="t")  # no token: another identity
        assert hub.traffic.total() > calls
        assert d.site.counters.manifest_hits == 1


async def test_a_site_store_that_is_down_costs_nothing_and_is_caught_up_after_a_restart(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    hub.commit("site/later", {"weights.bin": os.urandom(2 * MB), "a.json": b"{}"})
    bucket = new_bucket(s3)
    dead = site_env(s3, bucket, NOSANA_CACHE_SITE__ENDPOINT_URL="http://127.0.0.1:9")
    env = {"HF_ENDPOINT": hub.url}
    async with node(tmp_path / "a", dead | env) as a:
        started = time.monotonic()
        lease = await a.cache.acquire(hf("site/later"), holder="t")
        assert time.monotonic() - started < 10
        assert lease.view is not None
        assert (lease.view / "a.json").read_bytes() == b"{}"
        report = await a.site.report()
        assert report.up is False
        assert report.last_error
        await asyncio.sleep(0.2)
        assert await a.site.journal.pending() == 1  # owed, not lost
    async with node(tmp_path / "a", site_env(s3, bucket) | env) as a:  # the same store
        await a.uploaded()
        assert a.site.counters.manifests_uploaded == 1
    calls = hub.traffic.total()
    async with node(tmp_path / "b", site_env(s3, bucket) | env) as b:
        await b.cache.acquire(hf("site/later"), holder="t")
    assert hub.traffic.total() == calls


async def test_a_herd_of_two_nodes_fetches_a_cold_entry_once_upstream(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    big = Content.generated(6 * MB, seed=1803)
    hub.commit("site/herd", {"model.safetensors": big, "config.json": b"{}"})
    release = threading.Event()
    hub.set_faults(big, Faults(hold_after=MB, hold=release))
    env = site_env(s3, new_bucket(s3)) | {"HF_ENDPOINT": hub.url}
    metadata = hub.traffic.total("GET /api/")
    try:
        async with node(tmp_path / "a", env) as a, node(tmp_path / "b", env) as b:
            first = asyncio.create_task(a.cache.acquire(hf("site/herd"), holder="t"))
            await _until(lambda: hub.cdn_traffic.count(f"GET /lfs/{big.sha256}") == 1)
            second = asyncio.create_task(b.cache.acquire(hf("site/herd"), holder="t"))
            await _until(lambda: b.site.counters.herd_waiting == 1)  # b missed, a holds the claim
            release.set()
            leases = await asyncio.gather(first, second)
            assert tree(leases[0].view) == tree(leases[1].view)
            assert b.site.counters.herd_waits == 1
            assert b.site.counters.manifest_hits == 1
            await a.uploaded()
    finally:
        release.set()
    assert hub.cdn_traffic.count(f"GET /lfs/{big.sha256}") == 1  # one copy from upstream
    assert hub.traffic.total("GET /api/") - metadata == 2  # one node's revision and tree


async def _until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_a_manifest_past_its_ttl_is_passed_over_for_upstream(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    """A manifest's ttl runs from the entry's first download anywhere on the site: once it is
    over, node B fetches upstream as if the site store were empty, and shares its own."""
    repo = "site/expiring"
    hub.commit(repo, {"model.safetensors": Content.generated(3 * MB, seed=1890)})
    bucket = new_bucket(s3)
    env = site_env(s3, bucket) | {"HF_ENDPOINT": hub.url, "NOSANA_CACHE_STORE__TTL": "1h"}
    clock = ManualClock(start=time.time())
    async with node(tmp_path / "a", env, clock) as a:
        first = await a.cache.acquire(hf(repo), holder="t")
        await a.uploaded()
    hub_calls = hub.traffic.total()
    clock.advance(3601)  # node B comes an hour and a second after node A's download
    async with node(tmp_path / "b", env, clock) as b:
        second = await b.cache.acquire(hf(repo), holder="t")
        assert tree(second.view) == tree(first.view)
        assert b.site.counters.manifest_hits == 0
        assert b.site.counters.bytes_from_site == 0
        assert hub.traffic.total() > hub_calls  # asked upstream again
        await b.uploaded()
        assert b.site.counters.manifests_uploaded == 1  # its own, fresh, for the next node
    found = manifests(s3, bucket)
    assert len(found) == 2
    assert {m["first_downloaded_at"] for m in found.values()} == {
        first.entry.downloaded_at,
        second.entry.downloaded_at,
    }
