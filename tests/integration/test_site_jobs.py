"""A site of two nodes running Nosana jobs: two daemons with separate stores and separate
Docker engines, moto's server as their site store, a pull-through registry (as shipped in
config/) for images, and upstreams that count every request and byte: the hub, an S3 host,
the registry serving Ollama models, and the registry the images come from."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.fakes.static_host import StaticHost
from tests.peers.dockerd import DockerPeer
from tests.peers.ollama import LICENSE, MODEL, PARAMS, TEMPLATE, push_model
from tests.peers.registry import PULL_THROUGH_EXAMPLE, RegistryPeer
from tests.peers.s3 import S3Peer
from tests.site_nodes import new_bucket, site_config, site_objects

pytestmark = pytest.mark.docker
MB = 1024 * 1024


@dataclass
class Upstreams:
    hub: FakeHub
    s3: StaticHost
    ollama: FaultyProxy
    images: FaultyProxy
    mirror: RegistryPeer

    @property
    def image(self) -> str:
        return f"{self.images.url.removeprefix('http://')}/nosana/multi:1.0"

    def traffic(self) -> dict[str, Any]:
        """Everything each upstream was asked so far (requests by method and path, bytes)."""
        blobs = {k: n for k, n in self.images.traffic.requests.items() if "/blobs/" in k}
        return {
            "hub": dict(self.hub.traffic.requests),
            "hub content": (dict(self.hub.cdn_traffic.requests), self.hub.cdn_traffic.body_bytes),
            "s3": (dict(self.s3.traffic.requests), self.s3.traffic.body_bytes),
            "ollama": (dict(self.ollama.traffic.requests), self.ollama.traffic.body_bytes),
            "image blobs": blobs,
        }


@pytest.fixture(scope="module")
def upstreams(
    tmp_path_factory: pytest.TempPathFactory,
    servers: ThreadedServers,
    hub: FakeHub,
    registry: RegistryPeer,
    docker_peer: DockerPeer,
    second_docker_peer: DockerPeer,
) -> Iterator[Upstreams]:
    for peer in (docker_peer, second_docker_peer):
        peer.forget_images()  # else a layer one engine already has is never asked for
    hub.commit(
        "site/job",
        {"model.safetensors": Content.generated(12 * MB, seed=1810), "config.json": b"{}"},
    )
    s3 = StaticHost(servers, listing=True)
    s3.put("bucket/sd/unet.bin", os.urandom(3 * MB))
    s3.put("bucket/sd/vae/config.json", b'{"vae": true}')
    s3.put("bucket/private/weights.bin", os.urandom(MB))
    weights = {
        MODEL: os.urandom(2 * MB),
        TEMPLATE: b"{{ .Prompt }}",
        # Not the HF repo's `{}`: two entries fetching one blob at the same moment may each
        # read it from the site (no single flight across entries), which would make the byte
        # count below depend on timing.
        PARAMS: b'{"stop": []}',
        LICENSE: b"MIT",
    }
    push_model(registry.url, "library/sitejob", "latest", weights)
    images = FaultyProxy(servers, registry.url)
    mirror = RegistryPeer(
        tmp_path_factory.mktemp("pull-through"), proxy_of=images.url, example=PULL_THROUGH_EXAMPLE
    ).start()
    yield Upstreams(hub, s3, FaultyProxy(servers, registry.url), images, mirror)
    mirror.stop()


def node(root: Path, up: Upstreams, engine: DockerPeer, site: dict[str, Any]) -> DaemonProcess:
    config: dict[str, dict[str, Any]] = {
        "docker": {
            "host": engine.host,
            "gpu": "none",
            "registry_mirrors": {up.image.split("/", 1)[0]: up.mirror.host},
        },
        "ollama": {"registry": up.ollama.url},
        "security": {"allow_private_urls": True},  # the S3 host is on loopback
        "site": site,
    }
    return DaemonProcess(root, config, env={"HF_ENDPOINT": up.hub.url}).start()


def job(up: Upstreams, *resources: dict[str, Any]) -> dict[str, Any]:
    resources = resources or (
        {"type": "HF", "repo": "site/job", "target": "/models/hf"},
        {"type": "S3", "url": f"{up.s3.url}/bucket/sd", "target": "/models/s3"},
        {"type": "Ollama", "model": "sitejob"},
    )
    listing = "find /models /root/.ollama/models -type f 2>/dev/null | sort | xargs md5sum"
    return {
        "version": "0.1",
        "type": "container",
        "ops": [
            {
                "type": "container/run",
                "id": "site",
                "args": {"image": up.image, "cmd": listing, "resources": list(resources)},
            }
        ],
    }


def run(daemon: DaemonProcess, definition: dict[str, Any]) -> dict[str, Any]:
    record = daemon.wait_job(daemon.client().request("POST", "/v1/jobs", body=definition)["id"])
    assert record["state"] == "completed", record
    return record


def site_status(daemon: DaemonProcess) -> dict[str, Any]:
    status: dict[str, Any] = daemon.client().get("/v1/status")["site"]
    return status


def until(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def uploaded(daemon: DaemonProcess, manifests: int) -> None:
    def done() -> bool:
        status = site_status(daemon)
        return bool(status["uploads_pending"] == 0 and status["manifests_uploaded"] >= manifests)

    until(done)


def test_node_b_runs_node_as_job_with_nothing_from_any_upstream(
    tmp_path: Path,
    upstreams: Upstreams,
    s3: S3Peer,
    docker_peer: DockerPeer,
    second_docker_peer: DockerPeer,
) -> None:
    site = site_config(s3, bucket := new_bucket(s3))
    a = node(tmp_path / "a", upstreams, docker_peer, site)
    b = node(tmp_path / "b", upstreams, second_docker_peer, site)
    try:
        first = run(a, job(upstreams))
        # The three resources, and the image's tag, manifest and blobs (registry entries,
        # pulled through node A's registry endpoint): each shared with its manifest.
        images = [
            e for e in a.client().get("/v1/resources")["resources"] if e["type"] == "registry"
        ]
        assert images, "the image came through the registry endpoint"
        shared = 3 + len(images)
        uploaded(a, manifests=shared)
        until(lambda: upstreams.mirror.stored_all(upstreams.images.traffic.requests))
        before = upstreams.traffic()
        second = run(b, job(upstreams))
        after = upstreams.traffic()
        assert b.job_logs(second["id"]) == a.job_logs(first["id"])
        assert "/root/.ollama/models/manifests/registry.ollama.ai/library/sitejob/latest" in (
            b.job_logs(second["id"])
        )
        assert after == before  # no byte, no metadata call, no image layer from upstream
        op = second["ops"][0]
        assert op["image"]["pulled"] is True  # by node B's own engine, through the mirror
        assert [r["hit"] for r in op["resources"]] == [
            False,
            False,
            False,
        ]  # fetched: from the site
        status = site_status(b)
        assert status["state"] == "up"
        assert status["manifest_hits"] == shared
        # The image came through node B's registry endpoint from the site store too: B took
        # nothing from any upstream, the site's pull-through registry included.
        assert status["bytes_from_upstream"] == 0
        blobs = site_objects(s3, bucket, "blobs/")  # of the shared entries: nothing else
        assert status["bytes_from_site"] == sum(len(data) for data in blobs.values())
        shown = b.cli("status")
        assert f"site     s3://{bucket}/nodes: up;" in shown.stdout, shown.stdout
        metrics = b.client()._send("GET", "/metrics").read().decode()
        upstream_line = 'nosana_cache_origin_bytes_total{origin="upstream"} '
        counted = next(line for line in metrics.splitlines() if line.startswith(upstream_line))
        assert float(counted.removeprefix(upstream_line)) == 0
        assert f'nosana_cache_site_lookups_total{{result="hit"}} {float(shared)}' in metrics
        swept = a.cli("gc", "--site")
        assert swept.returncode == 0, swept.stderr
        assert "site store: removed 0 manifests and 0 blobs" in swept.stdout
    finally:
        assert a.stop() == 0
        assert b.stop() == 0


def test_a_private_resource_is_not_shared_by_default(
    tmp_path: Path,
    upstreams: Upstreams,
    s3: S3Peer,
    docker_peer: DockerPeer,
    second_docker_peer: DockerPeer,
) -> None:
    iam = {"REGION": "us-east-1", "ACCESS_KEY_ID": "AKIAPRIVATE", "SECRET_ACCESS_KEY": "hush"}
    private = {
        "type": "S3",
        "url": f"{upstreams.s3.url}/bucket/private",
        "IAM": iam,
        "target": "/p",
    }
    site = site_config(s3, bucket := new_bucket(s3))
    a = node(tmp_path / "a", upstreams, docker_peer, site)
    b = node(tmp_path / "b", upstreams, second_docker_peer, site)
    try:
        run(a, job(upstreams, private))
        time.sleep(0.5)  # what an upload would take, had one been owed
        assert site_status(a)["uploads_pending"] == 0
        assert site_objects(s3, bucket) == {}
        gets = upstreams.s3.traffic.count("GET /bucket/private/weights.bin")
        run(b, job(upstreams, private))
        assert upstreams.s3.traffic.count("GET /bucket/private/weights.bin") == gets + 1
        assert site_status(b)["manifest_hits"] == site_status(b)["manifest_misses"] == 0
    finally:
        assert a.stop() == 0
        assert b.stop() == 0


def test_a_herd_of_both_nodes_on_one_cold_entry_fetches_it_once_upstream(
    tmp_path: Path,
    upstreams: Upstreams,
    hub: FakeHub,
    s3: S3Peer,
    docker_peer: DockerPeer,
    second_docker_peer: DockerPeer,
) -> None:
    weights = Content.generated(8 * MB, seed=1811)
    hub.commit("site/herd", {"model.safetensors": weights, "config.json": b"{}"})
    release = threading.Event()
    hub.set_faults(weights, Faults(hold_after=MB, hold=release))
    resource = {"type": "HF", "repo": "site/herd"}
    site = site_config(s3, new_bucket(s3))
    a = node(tmp_path / "a", upstreams, docker_peer, site)
    b = node(tmp_path / "b", upstreams, second_docker_peer, site)
    metadata = hub.traffic.total("GET /api/")
    entries: dict[str, Any] = {}

    def pull(name: str, daemon: DaemonProcess) -> None:
        entries[name] = daemon.client().request("POST", "/v1/resources?wait=true", body=resource)

    pulls = [threading.Thread(target=pull, args=(n, d)) for n, d in (("a", a), ("b", b))]
    try:
        pulls[0].start()
        until(lambda: hub.cdn_traffic.count(f"GET /lfs/{weights.sha256}") == 1)  # a is held
        pulls[1].start()
        until(lambda: site_status(b)["herd_waiting"] == 1)  # b missed too, and waits for a
        release.set()
        for thread in pulls:
            thread.join(timeout=120)
        assert [entries[n]["state"] for n in "ab"] == ["ready", "ready"], entries
        assert entries["a"]["id"] == entries["b"]["id"]
    finally:
        release.set()
        assert a.stop() == 0
        assert b.stop() == 0
    assert hub.cdn_traffic.count(f"GET /lfs/{weights.sha256}") == 1
    assert hub.traffic.total("GET /api/") - metadata == 2  # one node's revision and tree


def test_jobs_complete_when_the_site_store_stops_mid_run(
    tmp_path: Path,
    servers: ThreadedServers,
    upstreams: Upstreams,
    s3: S3Peer,
    docker_peer: DockerPeer,
    second_docker_peer: DockerPeer,
) -> None:
    # The site store at an endpoint of its own (moto's backend is the process's: the same
    # buckets and keys as `s3`), so that this test can stop it.
    endpoint = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    endpoint.start()
    host, port = endpoint.get_host_and_port()
    bucket = new_bucket(s3)
    try:
        site = site_config(s3, bucket, endpoint_url=f"http://{host}:{port}")
        a = node(tmp_path / "a", upstreams, docker_peer, site)
        try:
            run(a, job(upstreams))
            uploaded(a, manifests=3)
        finally:
            assert a.stop() == 0
        # Node B reaches the site store through a proxy that holds every blob's body: B has
        # read the manifests and is reading blobs when the site store stops.
        holding = FaultyProxy(servers, f"http://{host}:{port}")
        holding.faults["/blobs/"] = Faults(stall_after=0, stall_seconds=60, stall_times=100)
        config = site | {"endpoint_url": holding.url, "stall_timeout": "2s"}
        b = node(tmp_path / "b", upstreams, second_docker_peer, config)
        try:
            job_id = b.client().request("POST", "/v1/jobs", body=job(upstreams))["id"]
            until(lambda: any("/blobs/" in k for k in holding.traffic.requests))
            endpoint.stop()
            record = b.wait_job(job_id)
            assert record["state"] == "completed", record
            status = site_status(b)
            assert status["state"] == "down", status
            assert status["manifest_hits"] == 3
            assert status["fallbacks"] >= 3
            assert status["bytes_from_upstream"] > 0
            assert "site.down" in b.log()
        finally:
            assert b.stop() == 0
    finally:
        endpoint.stop()
