"""Images through the site store: two nodes, each with its own store and registry endpoint
(in-process, on loopback), sharing a site store on moto's server; upstream the test bed's
registry behind a counting proxy (and a Bearer gate for a private repository), named as
`docker.registry_mirrors` names it. A client does what an engine does: `GET /v2/`, the
manifest by tag, then the config and the layers, three at once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from daemon.registry import Pull
from tests.fakes.bearer import BearerGate
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.peers.ollama import push_model
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer
from tests.site_nodes import Node, new_bucket, node, registry_endpoint, site_env, site_objects

MB = 1024 * 1024
ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
)
LAYER_TYPES = (  # push_model takes one layer per media type
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar",
)
ALICE = "Basic " + base64.b64encode(b"alice:s3cret").decode()


def env_for(upstream: str, s3: S3Peer, bucket: str) -> dict[str, str]:
    return site_env(s3, bucket) | {
        "NOSANA_CACHE_DOCKER__REGISTRY_MIRRORS": f'{{ "docker.io" = "{upstream}" }}',
    }


@asynccontextmanager
async def serving(root: Path, env: dict[str, str]) -> AsyncIterator[tuple[Node, str]]:
    async with node(root, env) as peer, registry_endpoint(peer) as endpoint:
        yield peer, endpoint


async def pull(endpoint: str, name: str, tag: str, auth: str | None = None) -> dict[str, bytes]:
    """What an engine fetches for `name:tag`: the manifest, then every blob it names (by
    digest); the bytes by digest. The endpoint takes a request's Basic credentials (or none)
    as it takes the token of its own that carries them."""
    headers = {"Authorization": auth} if auth else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        async with session.get(f"{endpoint}/v2/") as base:  # the challenge engines first meet
            assert base.status == 401
            assert base.headers["WWW-Authenticate"].startswith("Bearer "), base.headers
        url = f"{endpoint}/v2/{name}/manifests/{tag}"
        async with session.get(url, headers=headers | {"Accept": ACCEPT}) as answer:
            assert answer.status == 200, await answer.text()
            manifest = await answer.read()
            got = {answer.headers["Docker-Content-Digest"]: manifest}
        document = json.loads(manifest)
        digests = [document["config"]["digest"], *(d["digest"] for d in document["layers"])]
        slots = asyncio.Semaphore(3)  # dockerd's max-concurrent-downloads

        async def blob(digest: str) -> None:
            async with slots, session.get(f"{url.rsplit('/manifests/', 1)[0]}/blobs/{digest}",
                                          headers=headers) as answer:  # fmt: skip
                assert answer.status == 200, await answer.text()
                got[digest] = await answer.read()

        await asyncio.gather(*(blob(digest) for digest in digests))
    return got


async def settled(peer: Node) -> Pull:
    """The newest pull once every request of it has been answered: a client has its last
    byte a moment before the endpoint's handler settles the request's tally."""
    deadline = asyncio.get_running_loop().time() + 30
    while (newest := peer.registry.pulls.pulls()[0]).reading:
        assert asyncio.get_running_loop().time() < deadline, newest
        await asyncio.sleep(0.01)
    return newest


def image(registry: RegistryPeer, name: str) -> tuple[dict[str, bytes], int]:
    """An image of a config and three layers (one of 20 MiB: three verified pieces in the
    site store) pushed to the registry; its bytes by digest, and their sum."""
    sizes = (20 * MB, MB, 4096)
    layers = {kind: os.urandom(size) for kind, size in zip(LAYER_TYPES, sizes, strict=True)}
    pushed = push_model(registry.url, name, "1.0", layers, config=os.urandom(512))
    blobs = {f"sha256:{hex_}": data for hex_, data in pushed.blobs.items()}
    expected = {pushed.digest: pushed.manifest, **blobs}
    return expected, sum(len(data) for data in expected.values())


async def test_node_b_pulls_what_node_a_pulled_with_nothing_from_upstream(
    tmp_path: Path, servers: ThreadedServers, registry: RegistryPeer, s3: S3Peer
) -> None:
    expected, total = image(registry, "regsite/shared")
    upstream = FaultyProxy(servers, registry.url)
    bucket = new_bucket(s3)
    env = env_for(upstream.url, s3, bucket)
    async with serving(tmp_path / "a", env) as (a, endpoint):
        assert await pull(endpoint, "regsite/shared", "1.0") == expected
        await a.uploaded()
        assert a.site.counters.manifests_uploaded == 6  # the tag, the manifest, four blobs
        first = await settled(a)
        assert len(a.registry.pulls.pulls()) == 1
        assert first.image == "docker.io/regsite/shared:1.0"
        assert (first.bytes_sent, first.bytes_from["upstream"]) == (total, total)
        assert first.bytes_from["site"] == first.bytes_from["store"] == 0
    asked = dict(upstream.traffic.requests)
    assert any("/blobs/" in key for key in asked)
    async with serving(tmp_path / "b", env) as (b, endpoint):
        assert await pull(endpoint, "regsite/shared", "1.0") == expected
        assert dict(upstream.traffic.requests) == asked  # upstream saw nothing of node B
        assert b.site.counters.manifest_hits == 6
        second = await settled(b)
        assert len(b.registry.pulls.pulls()) == 1
        assert second.bytes_from["upstream"] == 0
        assert second.bytes_from["site"] == second.bytes_sent == total
        assert second.digest in expected
        assert second.blobs == 4
        blob_entries = [e for e in await b.store.entries() if "(blob)" in e.source]
        assert len(blob_entries) == 4
        assert {e.details["site_store"]["from_node"] for e in blob_entries} == {a.site.journal.node}
        # Pulled again on node B: every byte from its own store now.
        assert await pull(endpoint, "regsite/shared", "1.0") == expected
        third = await settled(b)
        assert third.bytes_from["store"] == third.bytes_sent == total
        assert b.registry.pulls.totals == {"upstream": 0, "site": total, "store": total}
        await b.uploaded()
        assert b.site.counters.bytes_uploaded == 0  # nothing the site store lacked
    assert dict(upstream.traffic.requests) == asked


async def test_a_private_image_stays_off_the_site_store(
    tmp_path: Path, servers: ThreadedServers, registry: RegistryPeer, s3: S3Peer
) -> None:
    name = "regsite/private"
    expected, _total = image(registry, name)
    upstream = FaultyProxy(servers, registry.url)
    gate = BearerGate(servers, upstream.url, users={"alice": "s3cret"}, private=frozenset({name}))
    bucket = new_bucket(s3)
    env = env_for(gate.url, s3, bucket)
    # The gate as a registry of its own: a pull with credentials is fetched from its own host.
    at_own_host = f"{gate.url.removeprefix('http://').replace(':', '__')}/{name}"
    async with serving(tmp_path / "a", env) as (a, endpoint):
        assert await pull(endpoint, at_own_host, "1.0", auth=ALICE) == expected
        await a.uploaded()
        assert a.site.counters.manifest_hits == a.site.counters.manifest_misses == 0
        assert a.registry.pulls.pulls()[0].private
    assert site_objects(s3, bucket) == {}  # no manifest, no blob, no claim
    blob_gets = upstream.traffic.total("GET /v2/regsite/private/blobs/")
    async with serving(tmp_path / "b", env) as (_b, endpoint):
        assert await pull(endpoint, at_own_host, "1.0", auth=ALICE) == expected
    assert upstream.traffic.total("GET /v2/regsite/private/blobs/") >= blob_gets + 4
    for digest in expected:
        assert hashlib.sha256(expected[digest]).hexdigest() == digest.removeprefix("sha256:")
