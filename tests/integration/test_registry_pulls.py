"""The daemon's own pulls through its registry endpoint: a job's image pulled by the endpoint's
name, its layers store entries, then tagged as the job wrote it and the endpoint's tag removed.

The session's engine (tests/peers/dockerd.py) and registry; the daemon's
`docker.registry_mirrors` sends Docker Hub names to the registry behind a counting proxy, the
endpoint fetches from there.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.peers.dockerd import DockerPeer
from tests.peers.images import build
from tests.peers.registry import RegistryPeer

pytestmark = pytest.mark.docker
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def image(docker_peer: DockerPeer, registry: RegistryPeer) -> Iterator[str]:
    """A Docker Hub name of an image of its own (no engine has it), pushed to the registry."""
    name = f"regpull/app-{uuid.uuid4().hex[:8]}:1"
    client = docker_peer.client()
    try:
        build(client, f"{registry.host}/{name}", {"etc/message": b"through the endpoint\n"})
        for line in client.images.push(f"{registry.host}/{name}", stream=True, decode=True):
            assert "error" not in line, line
        client.images.remove(f"{registry.host}/{name}", force=True)
        yield name
        for leftover in (name, f"{registry.host}/{name}"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(leftover, force=True)
    finally:
        client.close()


def job(image: str) -> dict[str, Any]:
    return {
        "version": "0.1",
        "type": "container",
        "ops": [
            {
                "type": "container/run",
                "id": "run",
                "args": {"image": image, "cmd": "cat /etc/message"},
            }
        ],
    }


def run(daemon: DaemonProcess, image: str) -> dict[str, Any]:
    record = daemon.wait_job(daemon.client().request("POST", "/v1/jobs", body=job(image))["id"])
    assert record["state"] == "completed", record
    assert daemon.job_logs(record["id"], "run") == "through the endpoint\n"
    return record


def blob_gets(proxy: FaultyProxy) -> int:
    return sum(
        n for k, n in proxy.traffic.requests.items() if k.startswith("GET ") and "/blobs/" in k
    )


def registry_entries(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return [e for e in daemon.client().get("/v1/resources")["resources"] if e["type"] == "registry"]


def config_digest(registry: RegistryPeer, image: str) -> str:
    name, tag = image.rsplit(":", 1)
    request = urllib.request.Request(
        f"{registry.url}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["config"]["digest"])


def test_a_jobs_image_comes_through_the_endpoint_and_again_from_the_store(
    tmp_path: Path,
    servers: ThreadedServers,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    image: str,
) -> None:
    upstream = FaultyProxy(servers, registry.url)
    config = docker_peer.daemon_config(upstream.url.removeprefix("http://"))
    daemon = DaemonProcess(tmp_path, config).start()
    engine = docker_peer.client()
    try:
        record = run(daemon, image)
        assert record["ops"][0]["image"]["pulled"] is True
        pulled = engine.images.get(image)
        assert pulled.id == config_digest(registry, image)  # the image of a direct pull
        assert pulled.tags == [image]  # as the job wrote it; the endpoint's name removed
        sources = {e["source"] for e in registry_entries(daemon)}
        assert f"docker.io/{image} (tag)" in sources, sources
        blobs = blob_gets(upstream)
        assert blobs >= 2  # the layers and the config, fetched by the endpoint

        engine.images.remove(image, force=True)  # the engine lost it: pulled again...
        run(daemon, image)
        assert engine.images.get(image).id == pulled.id
        assert blob_gets(upstream) == blobs  # ...with every layer from the store
    finally:
        engine.close()
        assert daemon.stop() == 0


def test_with_the_endpoint_off_the_image_comes_through_the_mirror_as_before(
    tmp_path: Path, docker_peer: DockerPeer, registry: RegistryPeer, image: str
) -> None:
    config = {**docker_peer.daemon_config(registry.host), "registry": {"mirror": False}}
    daemon = DaemonProcess(tmp_path, config).start()
    engine = docker_peer.client()
    try:
        run(daemon, image)
        assert engine.images.get(image).tags == [image]
        assert registry_entries(daemon) == []  # nothing of it went through a store
        assert f'"source": "{registry.host}/{image}", "via": "mirror"' in daemon.log()
    finally:
        engine.close()
        assert daemon.stop() == 0
