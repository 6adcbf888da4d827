"""Files fetched through the Hub endpoint (`/hf`) shared through the site store, in-process:
two nodes with separate stores, each serving `/hf` over HTTP on loopback, moto's server as
their site store, the session's fake hub upstream counting every request and byte it serves.
Herds and streaming reads are ordered by bodies held (upstream, or the site store through a
proxy) until the test releases them, never by timing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.peers.s3 import S3Peer
from tests.site_nodes import Node, hub_endpoint, new_bucket, node, site_env, site_objects

MB = 1024 * 1024
CONFIG = b'{"architectures": ["Llama"]}'


def env_for(hub: FakeHub, s3: S3Peer, bucket: str, **extra: str) -> dict[str, str]:
    """One request per file upstream (a hold on its body holds the whole download), and a
    body held is not a stall: these tests release what they hold."""
    return site_env(s3, bucket, **extra) | {
        "HF_ENDPOINT": hub.url,
        "NOSANA_CACHE_DOWNLOAD__PART_SIZE": "64MiB",
        "NOSANA_CACHE_DOWNLOAD__STALL_TIMEOUT": "120s",
    }


@asynccontextmanager
async def serving(root: Path, env: dict[str, str]) -> AsyncIterator[tuple[Node, str]]:
    """A node and the `HF_ENDPOINT` of its `/hf`."""
    async with node(root, env) as peer, hub_endpoint(peer) as endpoint:
        yield peer, endpoint


async def get(endpoint: str, repo: str, path: str, token: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
        session.get(f"{endpoint}/{repo}/resolve/main/{path}", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.read()


def file_requests(hub: FakeHub, repo: str) -> int:
    """Requests for `repo`'s files upstream: small files from the hub, LFS files from its
    content host after the hub's redirect (any repo's: the content host names blobs only, so
    this counts between two points of one test)."""
    return hub.traffic.total(f"GET /{repo}/resolve/") + hub.cdn_traffic.total("GET /lfs/")


def hub_manifests(s3: S3Peer, bucket: str) -> list[dict[str, Any]]:
    """The manifests in the site store of entries made through `/hf`."""
    found = [json.loads(v) for v in site_objects(s3, bucket, "manifests/").values()]
    return [m for m in found if m["details"].get("via") == "/hf"]


async def test_node_b_serves_what_node_a_fetched_through_hf_without_a_file_from_upstream(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    big = Content.generated(20 * MB, seed=1850)  # three verified pieces in the site store
    repo = "hubsite/shared"
    hub.commit(repo, {"model.safetensors": big, "config.json": CONFIG})
    files = {"model.safetensors": big.read(), "config.json": CONFIG}
    bucket = new_bucket(s3)
    env = env_for(hub, s3, bucket)
    async with serving(tmp_path / "a", env) as (a, endpoint):
        for path, data in files.items():
            assert await get(endpoint, repo, path) == data
        await a.uploaded()
        assert a.site.counters.manifests_uploaded == 2
    before, cdn_bytes = file_requests(hub, repo), hub.cdn_traffic.body_bytes
    async with serving(tmp_path / "b", env) as (b, endpoint):
        for path, data in files.items():
            assert await get(endpoint, repo, path) == data
        assert b.site.counters.manifest_hits == 2
        assert b.site.counters.bytes_from_site == big.size + len(CONFIG)
        [entry] = [e for e in await b.store.entries() if e.details.get("path") == "config.json"]
        assert entry.details["via"] == "/hf"
        assert entry.details["site_store"]["from_node"] == a.site.journal.node
        await b.uploaded()
        assert b.site.counters.bytes_uploaded == 0  # nothing the site store lacked
    assert file_requests(hub, repo) == before
    assert hub.cdn_traffic.body_bytes == cdn_bytes
    commit = entry.details["commit"]
    shared = sorted(m["source"] for m in hub_manifests(s3, bucket))
    assert shared == sorted(f"hf://{repo}@{commit[:12]}/{path} (via /hf)" for path in files)
    assert f"blobs/sha256/{big.sha256}" in site_objects(s3, bucket, "blobs/")


async def test_a_herd_of_two_nodes_on_one_cold_file_fetches_it_once_upstream(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    weights = Content.generated(6 * MB, seed=1851)
    repo = "hubsite/herd"
    hub.commit(repo, {"model.safetensors": weights})
    release = threading.Event()
    hub.set_faults(weights, Faults(hold_after=2 * MB, hold=release))
    env = env_for(hub, s3, new_bucket(s3))
    sent = hub.cdn_traffic.body_bytes
    try:
        async with (
            serving(tmp_path / "a", env) as (a, at_a),
            serving(tmp_path / "b", env) as (b, at_b),
            aiohttp.ClientSession() as session,
        ):
            url = f"{at_a}/{repo}/resolve/main/model.safetensors"
            async with session.get(url) as first:
                # Node A leads: its client streams what has come from upstream so far.
                head = await first.content.readexactly(MB)
                # The fake counts a chunk once it is written: the client may be ahead of it.
                await until(lambda: hub.cdn_traffic.body_bytes - sent >= 2 * MB)
                assert hub.cdn_traffic.body_bytes - sent == 2 * MB  # the rest is held
                second = asyncio.create_task(get(at_b, repo, "model.safetensors"))
                await until(lambda: b.site.counters.herd_waiting == 1)  # A holds the claim
                release.set()
                rest = await first.content.read()
            assert head + rest == weights.read()
            assert await second == weights.read()
            assert b.site.counters.herd_waits == 1
            assert b.site.counters.manifest_hits == 1
            await a.uploaded()
    finally:
        release.set()
    assert hub.cdn_traffic.count(f"GET /lfs/{weights.sha256}") == 1  # one copy from upstream


async def test_a_file_streams_from_the_site_store_as_its_pieces_arrive(
    tmp_path: Path, hub: FakeHub, s3: S3Peer, servers: ThreadedServers
) -> None:
    big = Content.generated(24 * MB, seed=1852)  # pieces at 0, 8 and 16 MiB
    repo = "hubsite/streamed"
    hub.commit(repo, {"model.safetensors": big})
    bucket = new_bucket(s3)
    async with serving(tmp_path / "a", env_for(hub, s3, bucket)) as (a, endpoint):
        assert await get(endpoint, repo, "model.safetensors") == big.read()
        await a.uploaded()
    # Node B reaches the site store through a proxy holding the piece at 8 MiB until released.
    release = threading.Event()
    proxy = FaultyProxy(servers, s3.url)
    proxy.faults[f"{big.sha256} bytes={8 * MB}-"] = Faults(hold_after=0, hold=release)
    env = env_for(hub, s3, bucket, NOSANA_CACHE_SITE__ENDPOINT_URL=proxy.url)
    env["NOSANA_CACHE_SITE__STALL_TIMEOUT"] = "120s"  # held is not stalled, in this test
    cdn = hub.cdn_traffic.count(f"GET /lfs/{big.sha256}")
    try:
        async with serving(tmp_path / "b", env) as (b, endpoint), aiohttp.ClientSession() as s:
            async with s.get(f"{endpoint}/{repo}/resolve/main/model.safetensors") as response:
                assert response.status == 200
                head = await response.content.readexactly(4 * MB)
                assert head == big.read(0, 4 * MB)
                assert b.site.counters.bytes_from_site < big.size  # the piece at 8 MiB is held
                release.set()
                rest = await response.content.read()
            assert hashlib.sha256(head + rest).hexdigest() == big.sha256
            assert b.site.counters.bytes_from_site == big.size
    finally:
        release.set()
    assert hub.cdn_traffic.count(f"GET /lfs/{big.sha256}") == cdn


async def test_files_of_private_and_gated_repos_stay_off_the_site_store_by_default(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    weights = {name: Content.generated(MB, seed=1853 + i).read() for i, name in enumerate("pgo")}
    hub.commit("hubsite/private", {"w.bin": weights["p"]}, private=True)
    hub.commit("hubsite/gated", {"w.bin": weights["g"]}, gated=True)
    hub.commit("hubsite/open", {"w.bin": weights["o"]})
    bucket = new_bucket(s3)
    async with serving(tmp_path / "a", env_for(hub, s3, bucket)) as (a, endpoint):
        for repo, key in (("private", "p"), ("gated", "g"), ("open", "o")):
            assert await get(endpoint, f"hubsite/{repo}", "w.bin", hub.token) == weights[key]
        await a.uploaded()
        assert a.site.counters.manifest_misses == 1  # the others were not even looked up
    # The open repo's file is shared although its reader sent a token: the Hub serves it alike
    # to every reader, and the identity of a file of /hf names no token.
    assert [m["details"]["repo"] for m in hub_manifests(s3, bucket)] == ["hubsite/open"]


async def test_with_share_private_a_gated_file_is_shared_and_each_reader_checked_upstream(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    weights = Content.generated(MB, seed=1856).read()
    repo = "hubsite/gated-shared"
    hub.commit(repo, {"w.bin": weights}, gated=True)
    env = env_for(hub, s3, new_bucket(s3), NOSANA_CACHE_SITE__SHARE_PRIVATE="true")
    async with serving(tmp_path / "a", env) as (a, endpoint):
        assert await get(endpoint, repo, "w.bin", hub.token) == weights
        await a.uploaded()
    before = file_requests(hub, repo)
    async with serving(tmp_path / "b", env) as (b, endpoint), aiohttp.ClientSession() as s:
        async with s.get(f"{endpoint}/{repo}/resolve/main/w.bin") as refused:
            assert refused.status == 401
            assert refused.headers["X-Error-Code"] == "GatedRepo"
        async with s.get(
            f"{endpoint}/{repo}/resolve/main/w.bin", headers={"Authorization": "Bearer hf_bad"}
        ) as refused:
            assert refused.status == 401
        assert await get(endpoint, repo, "w.bin", hub.token) == weights
        assert b.site.counters.manifest_hits == 1
    assert file_requests(hub, repo) == before  # the token was put to upstream, not the file


async def test_a_site_store_down_or_damaged_falls_back_to_upstream(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    big = Content.generated(20 * MB, seed=1857)
    repo = "hubsite/fallback"
    hub.commit(repo, {"model.safetensors": big})
    bucket = new_bucket(s3)
    dead = env_for(hub, s3, bucket, NOSANA_CACHE_SITE__ENDPOINT_URL="http://127.0.0.1:9")
    async with serving(tmp_path / "a", dead) as (a, endpoint):
        assert await get(endpoint, repo, "model.safetensors") == big.read()
        assert (await a.site.report()).up is False
    async with serving(tmp_path / "b", env_for(hub, s3, bucket)) as (b, endpoint):
        assert await get(endpoint, repo, "model.safetensors") == big.read()
        await b.uploaded()
    key = f"nodes/blobs/sha256/{big.sha256}"
    damaged = bytearray(big.read())
    damaged[9 * MB] ^= 0xFF  # in the piece from 8 to 16 MiB
    s3.client().put_object(Bucket=bucket, Key=key, Body=bytes(damaged))
    cdn_bytes, ranges = hub.cdn_traffic.body_bytes, len(hub.cdn_traffic.ranges)
    async with serving(tmp_path / "c", env_for(hub, s3, bucket)) as (c, endpoint):
        assert await get(endpoint, repo, "model.safetensors") == big.read()
        assert c.site.counters.damaged == 1
        assert hub.cdn_traffic.body_bytes - cdn_bytes == 8 * MB  # only that piece, upstream
        assert hub.cdn_traffic.ranges[ranges:] == [
            (f"/lfs/{big.sha256}", f"bytes={8 * MB}-{16 * MB - 1}")
        ]
        await c.uploaded()
    assert s3.client().get_object(Bucket=bucket, Key=key)["Body"].read() == big.read()


async def test_a_site_manifest_naming_other_bytes_than_the_listing_is_passed_over(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    """Each piece of another file's blob passes its check against the manifest that names it:
    what holds a manifest to the file is the listing, by sha256 and size for an LFS file
    before anything is read, by the git blob id the store checks for the others, which fails
    that read once; the manifest is then passed over and the file fetched upstream."""
    first, second = Content.generated(3 * MB, seed=1858), Content.generated(3 * MB, seed=1859)
    repo = "hubsite/disagreeing"
    config, other = b'{"model": "first"}', b'{"model": "other"}'  # the same size
    files: dict[str, bytes | Content] = {
        "a.safetensors": first,
        "b.safetensors": second,
        "a.json": config,
        "b.json": other,
    }
    hub.commit(repo, files)
    bucket = new_bucket(s3)
    env = env_for(hub, s3, bucket)
    async with serving(tmp_path / "a", env) as (a, endpoint):
        for path in files:
            await get(endpoint, repo, path)
        await a.uploaded()
    swap_manifest(s3, bucket, "a.safetensors", "b.safetensors")
    swap_manifest(s3, bucket, "a.json", "b.json")
    lfs, small = hub.cdn_traffic.count(f"GET /lfs/{first.sha256}"), file_requests(hub, repo)
    async with serving(tmp_path / "b", env) as (b, endpoint), aiohttp.ClientSession() as s:
        assert await get(endpoint, repo, "a.safetensors") == first.read()
        assert b.site.counters.bytes_from_site == 0
        assert hub.cdn_traffic.count(f"GET /lfs/{first.sha256}") == lfs + 1
        async with s.get(f"{endpoint}/{repo}/resolve/main/a.json") as failed:
            assert failed.status == 502  # its git blob id is not the listing's: never served
            assert "git blob id" in failed.headers["X-Error-Message"]
        assert await get(endpoint, repo, "a.json") == config
        assert b.site.counters.bytes_from_site == len(other)  # the failed read's only
        await b.uploaded()
    assert not site_objects(s3, bucket, "fetching/")  # no claim left behind
    # a.safetensors (the hub's redirect, then its content host), and a.json once
    assert file_requests(hub, repo) == small + 3


def swap_manifest(s3: S3Peer, bucket: str, path: str, other: str) -> None:
    """Make the site store's manifest of `path` name the blob of `other` (same size)."""
    objects = site_objects(s3, bucket, "manifests/")
    by_path = {json.loads(v)["details"]["path"]: (k, json.loads(v)) for k, v in objects.items()}
    key, manifest = by_path[path]
    manifest["files"] = [{**by_path[other][1]["files"][0], "path": path}]
    s3.client().put_object(Bucket=bucket, Key=f"nodes/{key}", Body=json.dumps(manifest).encode())


async def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)
