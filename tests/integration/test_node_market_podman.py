"""The market's images in the node's own engine: `node.engine` a private Podman service and
`docker.host` not set, the daemon pulls the required images into Podman's store through the
registry endpoint (libpod's pull, which skips TLS for the endpoint alone: this Podman's
registries.conf names no insecure registry), pins them, and the node, asking Podman through
the socket, finds them there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from daemon.cli.client import ApiError
from tests.daemon_process import DaemonProcess
from tests.fakes.hf_hub import FakeHub
from tests.fakes.market import FakeMarket
from tests.fakes.server import ThreadedServers
from tests.integration.test_registry_pulls import config_digest
from tests.peers.dockerd import DockerPeer
from tests.peers.podman import PodmanPeer
from tests.peers.registry import RegistryPeer

pytestmark = pytest.mark.docker

MARKET = "97G9NnvBDQ2WpKu6fasoMsAKmfj63C9rhysJnkeWodAf"
REQUIRED = "registry.hub.docker.com/nosana/multi:1.0"  # pulled through the mirror, as on a host


@pytest.fixture
def podman(docker_peer: DockerPeer, registry: RegistryPeer) -> Iterator[PodmanPeer]:
    """`docker_peer` pushed the test images to `registry`; Podman is told of no plain-HTTP
    registry (neither it nor the endpoint): only the endpoint's libpod pull can get them."""
    peer = PodmanPeer().start()
    yield peer
    peer.stop()


def until(check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def ready(daemon: DaemonProcess) -> bool:
    try:
        daemon.client().get("/readyz")
    except ApiError:
        return False
    return True


def podman_images(podman: PodmanPeer) -> list[dict[str, Any]]:
    """`GET /images/json` on Podman's own socket, not the daemon's."""
    client = docker.APIClient(base_url=f"unix://{podman.socket}", version="1.41")
    try:
        images: list[dict[str, Any]] = client.images()
    finally:
        client.close()
    return images


def podman_tags(podman: PodmanPeer) -> set[str]:
    return {tag for image in podman_images(podman) for tag in image.get("RepoTags") or []}


def test_the_markets_images_land_in_podmans_store_and_are_pinned(
    tmp_path: Path,
    servers: ThreadedServers,
    podman: PodmanPeer,
    registry: RegistryPeer,
    hub: FakeHub,
) -> None:
    market = FakeMarket(servers)
    market.serve({"required_images": [REQUIRED], "required_remote_resources": []})
    socket = Path(f"/tmp/ncn-{os.getpid()}-market.sock")
    config: dict[str, dict[str, Any]] = {
        "market": {"address": MARKET, "required_resources_url": market.template},
        # No docker.host: the node's engine is the daemon's own.
        "docker": {"gpu": "none", "registry_mirrors": {"registry.hub.docker.com": registry.host}},
        "security": {"allow_private_urls": True},
        "huggingface": {"endpoint": hub.url, "mirror_port": 0},
        "node": {"socket": str(socket), "engine": f"unix://{podman.socket}"},
    }
    daemon = DaemonProcess(tmp_path, config).start()
    try:
        assert REQUIRED not in podman_tags(podman)
        until(lambda: ready(daemon))
        status = daemon.client().get("/v1/status")
        assert status["docker"]["host"] == f"unix://{podman.socket}"
        tags = podman_tags(podman)
        assert REQUIRED in tags
        assert not any(tag.startswith("127.0.0.1") for tag in tags)  # the endpoint's tag went
        ids = {
            i["Id"].removeprefix("sha256:")
            for i in podman_images(podman)
            if REQUIRED in (i.get("RepoTags") or [])
        }
        direct = config_digest(registry, "nosana/multi:1.0").removeprefix("sha256:")
        assert ids == {direct}  # the image a direct pull gets
        pulls = status["registry"]["pulls"]
        through = [p for p in pulls if p["image"] == "docker.io/nosana/multi:1.0"]
        assert through, pulls
        assert through[0]["bytes_from_upstream"] > 0, pulls  # the bytes came through it
        log = daemon.log()
        assert '"libpod": "' in log  # libpod's pull, TLS skipped for the endpoint alone
        assert "image.endpoint_unreachable" not in log
        pinned = [e for e in daemon.client().get("/v1/resources")["resources"] if e["pinned"]]
        assert [(e["type"], e["pinned_by"]) for e in pinned] == [("image", ["market"])]
        assert pinned[0]["source"] == "docker://docker.io/nosana/multi:1.0"
    finally:
        assert daemon.stop() == 0
