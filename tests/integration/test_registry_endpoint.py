"""The registry endpoint (`registry.listen`) between real engines and the test bed's registry.

The daemon's `docker.registry_mirrors` names where Docker Hub's content is fetched from: the
test registry behind a counting proxy (tests/fakes/proxy.py), itself behind a Bearer token
gate for the token-flow tests (tests/fakes/bearer.py). A private dockerd of this module pulls
with `--registry-mirror http://<the endpoint>`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker.errors
import pytest

from daemon.util.limits import METADATA_BYTES
from tests.daemon_process import DaemonProcess
from tests.fakes.bearer import BearerGate
from tests.fakes.faults import Faults
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.peers.dockerd import DockerPeer
from tests.peers.multiarch import push_index
from tests.peers.ollama import push_blob, push_model
from tests.peers.procs import free_port
from tests.peers.registry import RegistryPeer

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
)
MB = 1024 * 1024
PRIVATE = "nosana/private"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ALICE = "Basic " + base64.b64encode(b"alice:s3cret").decode()


@dataclass
class Endpoint:
    daemon: DaemonProcess
    url: str
    upstream: FaultyProxy  # the registry, counted
    gate: BearerGate  # the token flow in front of it


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def code(self) -> str:
        return str(json.loads(self.body)["errors"][0]["code"])


def ask(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Answer:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


@pytest.fixture(scope="module")
def endpoint(
    tmp_path_factory: pytest.TempPathFactory,
    servers: ThreadedServers,
    registry: RegistryPeer,
    docker_peer: DockerPeer,  # publishes the standard images to the registry
) -> Iterator[Endpoint]:
    upstream = FaultyProxy(servers, registry.url)
    gate = BearerGate(
        servers, upstream.url, users={"alice": "s3cret"}, private=frozenset({PRIVATE})
    )
    port = free_port()
    config: dict[str, dict[str, Any]] = {
        "docker": {"registry_mirrors": {"docker.io": gate.url}, "gpu": "none"},
        "registry": {"listen": f"127.0.0.1:{port}"},
        "download": {"stall_timeout": "5s", "max_retries": 2},
        "security": {"allow_private_urls": True},  # the gate as a registry of its own
    }
    daemon = DaemonProcess(tmp_path_factory.mktemp("registry-endpoint"), config).start()
    try:
        yield Endpoint(daemon, f"http://127.0.0.1:{port}", upstream, gate)
    finally:
        assert daemon.stop() == 0


@pytest.fixture(scope="module")
def engine(endpoint: Endpoint) -> Iterator[DockerPeer]:
    peer = DockerPeer(mirror=endpoint.url).start()
    yield peer
    peer.stop()


def at_own_host(endpoint: Endpoint, name: str) -> str:
    """`name` on the gate as a registry of its own (`127.0.0.1__PORT/name`): a pull with
    credentials is fetched from its registry's own host, never through a mirror."""
    return f"{endpoint.gate.url.removeprefix('http://').replace(':', '__')}/{name}"


def direct_manifest(registry: RegistryPeer, name: str, tag: str) -> tuple[str, dict[str, Any]]:
    answer = ask(f"{registry.url}/v2/{name}/manifests/{tag}", {"Accept": MANIFEST_TYPES})
    assert answer.status == 200
    return answer.headers["Docker-Content-Digest"], json.loads(answer.body)


def blob_gets(proxy: FaultyProxy) -> int:
    return sum(
        n for k, n in proxy.traffic.requests.items() if k.startswith("GET ") and "/blobs/" in k
    )


@pytest.mark.docker
def test_docker_pulls_through_the_endpoint_and_again_asks_upstream_nothing(
    endpoint: Endpoint, engine: DockerPeer, registry: RegistryPeer
) -> None:
    digest, manifest = direct_manifest(registry, "nosana/multi", "1.0")
    client = engine.client()
    try:
        image = client.images.pull("nosana/multi", tag="1.0")
        assert image.id == manifest["config"]["digest"]  # the image id of a direct pull
        assert f"nosana/multi@{digest}" in image.attrs["RepoDigests"]
        assert blob_gets(endpoint.upstream) >= len(manifest["layers"]) + 1
        before = dict(endpoint.upstream.traffic.requests)

        client.images.remove(image.id, force=True)
        again = client.images.pull("nosana/multi", tag="1.0")
        assert again.id == image.id
        assert dict(endpoint.upstream.traffic.requests) == before  # a hit asks nothing
        out = client.containers.run(again.id, "cat /opt/layer2.txt", remove=True)
        assert out == b"layer 2 of nosana/multi\n" * 3
    finally:
        client.close()


def test_a_digest_reference_is_served_without_asking_upstream_twice(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    digest, _manifest = direct_manifest(registry, "library/busybox", "latest")
    url = f"{endpoint.url}/v2/library/busybox/manifests/{digest}"
    first = ask(url, {"Accept": MANIFEST_TYPES})
    assert first.status == 200
    assert hashlib.sha256(first.body).hexdigest() == digest.removeprefix("sha256:")
    assert first.headers["Docker-Content-Digest"] == digest
    assert first.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert int(first.headers["Content-Length"]) == len(first.body)
    before = dict(endpoint.upstream.traffic.requests)
    head = ask(url, {"Accept": MANIFEST_TYPES}, method="HEAD")
    assert head.status == 200
    assert head.headers["Docker-Content-Digest"] == digest
    assert ask(url).body == first.body
    assert dict(endpoint.upstream.traffic.requests) == before


def test_a_blob_range_is_206_with_the_upstream_bytes(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    data = os.urandom(3 * MB + 17)
    digest = push_blob(registry.url, "nosana/ranged", data)
    url = f"{endpoint.url}/v2/nosana/ranged/blobs/{digest}"
    part = ask(url, {"Range": "bytes=1000-1999"})
    assert part.status == 206
    assert part.body == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert part.headers["Docker-Content-Digest"] == digest
    whole = ask(url)
    assert whole.status == 200
    assert whole.body == data
    head = ask(url, method="HEAD")
    assert int(head.headers["Content-Length"]) == len(data)
    assert ask(url, {"Range": f"bytes={len(data)}-"}).status == 416
    # A position of more digits than int() takes (4,300) is past the end, not a 500.
    assert ask(url, {"Range": "bytes=" + "9" * 5000 + "-"}).status == 416
    assert ask(url, {"Range": "bytes=0-" + "9" * 5000}).body == data


def test_a_head_of_a_blob_larger_than_any_answer_gives_its_size(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    """A HEAD before the endpoint has seen the blob asks upstream's HEAD, whose Content-Length
    is the blob's: no answer body to bound (METADATA_BYTES is 64 MiB; it once gave 502)."""
    data = os.urandom(METADATA_BYTES.limit + 1)
    digest = push_blob(registry.url, "nosana/large-head", data)
    head = ask(f"{endpoint.url}/v2/nosana/large-head/blobs/{digest}", method="HEAD")
    assert head.status == 200, head.body
    assert int(head.headers["Content-Length"]) == len(data)
    assert head.headers["Docker-Content-Digest"] == digest


def test_unknown_tags_blobs_and_names_get_the_distribution_codes(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    unknown_tag = ask(f"{endpoint.url}/v2/nosana/multi/manifests/no-such-tag")
    assert (unknown_tag.status, unknown_tag.code()) == (404, "MANIFEST_UNKNOWN")
    missing = "sha256:" + "0" * 64
    unknown_blob = ask(f"{endpoint.url}/v2/nosana/multi/blobs/{missing}")
    assert (unknown_blob.status, unknown_blob.code()) == (404, "BLOB_UNKNOWN")
    unknown_name = ask(f"{endpoint.url}/v2/nosana/never-pushed/manifests/latest")
    assert unknown_name.status == 404
    direct = ask(f"{registry.url}/v2/nosana/never-pushed/manifests/latest")
    assert unknown_name.code() == direct.code()  # upstream's own word (2.8: MANIFEST_UNKNOWN)
    bad = ask(f"{endpoint.url}/v2/nosana/multi/blobs/sha256:xyz")
    assert (bad.status, bad.code()) == (400, "DIGEST_INVALID")


def test_the_base_asks_for_the_endpoints_own_token_which_carries_credentials(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    """Engines send credentials only as `/v2/`'s challenge asks: a Bearer realm here."""
    base = ask(f"{endpoint.url}/v2/")
    assert (base.status, base.code()) == (401, "UNAUTHORIZED")
    challenge = base.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{endpoint.url}/token"'), challenge
    anonymous = json.loads(ask(f"{endpoint.url}/token?scope=repository:a/b:pull").body)
    assert (
        ask(f"{endpoint.url}/v2/", {"Authorization": f"Bearer {anonymous['token']}"}).status == 200
    )
    carried = json.loads(ask(f"{endpoint.url}/token", {"Authorization": ALICE}).body)["token"]
    assert carried != anonymous["token"]
    assert ALICE not in carried
    data = os.urandom(1024)
    digest = push_blob(registry.url, PRIVATE, data)
    url = f"{endpoint.url}/v2/{at_own_host(endpoint, PRIVATE)}/blobs/{digest}"
    assert ask(url, {"Authorization": f"Bearer {anonymous['token']}"}).status == 401
    assert ask(url, {"Authorization": f"Bearer {carried}"}).body == data  # alice's, by token
    assert ask(url, {"Authorization": "Bearer forged"}).status == 401


def test_the_token_flow_is_anonymous_and_each_request_carries_a_bearer(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    data = os.urandom(MB)
    digest = push_blob(registry.url, "nosana/tokened", data)
    tokens = endpoint.gate.traffic.requests["GET /token"]
    answer = ask(f"{endpoint.url}/v2/nosana/tokened/blobs/{digest}")
    assert answer.status == 200
    assert answer.body == data
    assert endpoint.gate.traffic.requests["GET /token"] == tokens + 1  # one for the repository
    assert endpoint.gate.traffic.authorizations[-1].startswith("Bearer ")


def test_a_blob_still_arriving_streams_its_first_bytes_to_the_client(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    data = os.urandom(6 * MB)
    digest = push_blob(registry.url, "nosana/streamed", data)
    release = threading.Event()
    endpoint.upstream.faults[f"/blobs/{digest}"] = Faults(hold_after=2 * MB, hold=release)
    request = urllib.request.Request(f"{endpoint.url}/v2/nosana/streamed/blobs/{digest}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            first = response.read(64 * 1024)  # while upstream holds the rest
            assert first == data[: len(first)]
            assert len(first) > 0
            assert not release.is_set()
            release.set()
            rest = response.read()
        assert first + rest == data
    finally:
        release.set()
        del endpoint.upstream.faults[f"/blobs/{digest}"]


def test_status_and_metrics_say_where_the_endpoint_is_and_what_pulls_took(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    layer = os.urandom(2 * MB)
    pushed = push_model(registry.url, "nosana/counted", "2.0", {LAYER: layer})
    config = next(d for d in pushed.blobs if pushed.blobs[d] != layer)
    answer = ask(f"{endpoint.url}/v2/nosana/counted/manifests/2.0", {"Accept": MANIFEST_TYPES})
    assert answer.body == pushed.manifest
    for digest in (config, hashlib.sha256(layer).hexdigest()):
        assert ask(f"{endpoint.url}/v2/nosana/counted/blobs/sha256:{digest}").status == 200
    total = len(pushed.manifest) + sum(len(data) for data in pushed.blobs.values())
    assert ask(f"{endpoint.url}/v2/nosana/counted/blobs/sha256:{config}").status == 200
    # A client has its last byte a moment before the endpoint settles the request's tally.
    deadline = time.monotonic() + 30
    while (status := endpoint.daemon.client().get("/v1/status")["registry"])["pulls"][0][
        "state"
    ] != "done":
        assert time.monotonic() < deadline, status["pulls"][0]
        time.sleep(0.05)
    assert status["state"] == "up"
    assert f"http://{status['address']}" == endpoint.url
    counted = status["pulls"][0]
    assert counted["image"] == "docker.io/nosana/counted:2.0"
    assert counted["digest"] == pushed.digest
    assert counted["state"] == "done"
    assert counted["blobs"] == 3
    assert counted["bytes_from_upstream"] == total
    assert counted["bytes_from_store"] == len(pushed.blobs[config])  # asked twice
    assert counted["bytes_from_site"] == 0
    assert counted["rate_bytes_per_s"] > 0
    metrics = ask(f"{endpoint.daemon.url}/metrics").body.decode()
    assert f'nosana_cache_registry_up{{address="{status["address"]}"}} 1.0' in metrics
    served = status["bytes_by_source"]
    assert served["upstream"] >= total
    scraped = re.search(
        r'^nosana_cache_registry_bytes_total\{source="upstream"\} (\S+)$', metrics, re.M
    )
    assert scraped is not None
    assert float(scraped.group(1)) == served["upstream"]
    line = endpoint.daemon.cli("status").stdout
    assert "last pull docker.io/nosana/counted:2.0 (done)" in line


def test_a_private_blob_is_served_only_with_its_credentials(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    data = os.urandom(MB)
    digest = push_blob(registry.url, PRIVATE, data)
    url = f"{endpoint.url}/v2/{at_own_host(endpoint, PRIVATE)}/blobs/{digest}"
    refused = ask(url)
    assert (refused.status, refused.code()) == (401, "UNAUTHORIZED")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer realm=")  # as /v2/ asks
    allowed = ask(url, {"Authorization": ALICE})
    assert allowed.status == 200
    assert allowed.body == data
    gets = blob_gets(endpoint.upstream)
    assert ask(url, {"Authorization": ALICE}).body == data  # a hit, for the same credential
    assert blob_gets(endpoint.upstream) == gets
    # In the store now, and still not for a request without the credential, or another one.
    assert ask(url).status == 401
    wrong = "Basic " + base64.b64encode(b"alice:guess").decode()
    assert ask(url, {"Authorization": wrong}).status == 401


def test_with_upstream_down_cached_manifests_serve_and_others_fail_clearly(
    endpoint: Endpoint, registry: RegistryPeer
) -> None:
    digest, _manifest = direct_manifest(registry, "library/ubuntu", "latest")
    cached = f"{endpoint.url}/v2/library/ubuntu/manifests/{digest}"
    assert ask(cached).status == 200
    endpoint.upstream.faults["/v2/"] = Faults(fail_times=1000, fail_status=503)
    try:
        assert ask(cached).status == 200
        down = ask(f"{endpoint.url}/v2/library/ubuntu/manifests/never-cached")
        assert (down.status, down.code()) == (503, "UNAVAILABLE")
        assert "unavailable" in json.loads(down.body)["errors"][0]["message"]
    finally:
        del endpoint.upstream.faults["/v2/"]


@pytest.mark.docker
def test_docker_picks_its_platform_from_an_index_the_digests_upstreams(
    endpoint: Endpoint, engine: DockerPeer, registry: RegistryPeer
) -> None:
    index = push_index(registry.url, "nosana/multiarch", "1")
    mine, other = index.platforms["amd64"], index.platforms["arm64"]
    client = engine.client()
    try:
        image = client.images.pull("nosana/multiarch", tag="1")
        assert image.id == mine.config  # the engine's platform, as upstream has it
        assert f"nosana/multiarch@{index.digest}" in image.attrs["RepoDigests"]  # the index's
        asked = endpoint.upstream.traffic.requests
        assert asked[f"GET /v2/nosana/multiarch/blobs/{mine.layer}"] >= 1
        assert asked[f"GET /v2/nosana/multiarch/blobs/{other.layer}"] == 0  # never fetched
        served = ask(f"{endpoint.url}/v2/nosana/multiarch/manifests/1", {"Accept": MANIFEST_TYPES})
        assert served.headers["Docker-Content-Digest"] == index.digest
        assert served.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    finally:
        client.close()


@pytest.mark.docker
def test_with_upstream_down_docker_pulls_what_is_cached_and_says_why_not_the_rest(
    endpoint: Endpoint, engine: DockerPeer, registry: RegistryPeer
) -> None:
    client = engine.client()
    try:
        with contextlib.suppress(docker.errors.ImageNotFound):  # its layers come through
            client.images.remove("library/busybox:latest", force=True)
        cached = client.images.pull("library/busybox", tag="latest")  # now in the store
        client.images.remove(cached.id, force=True)
        endpoint.upstream.faults["/v2/"] = Faults(fail_times=1000, fail_status=503)
        try:
            again = client.images.pull("library/busybox", tag="latest")
            assert again.id == cached.id
            # By the endpoint's own name, as the daemon pulls (through registry-mirrors the
            # engine would go on to Docker Hub itself, and say what that did).
            address = endpoint.url.removeprefix("http://")
            with pytest.raises(docker.errors.APIError) as refused:
                client.images.pull(f"{address}/nosana/never-cached", tag="1")
            assert "503 Service Unavailable" in str(refused.value)  # the engine's word for it
        finally:
            del endpoint.upstream.faults["/v2/"]
        said = endpoint.daemon.log()
        assert '"path": "/v2/nosana/never-cached/manifests/1", "status": 503' in said
    finally:
        client.close()
