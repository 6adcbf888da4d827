"""The node's pull through the engine socket on a Podman told of no plain-HTTP registry: Podman,
unlike Docker, pulls from no plain-HTTP registry it was not told of, and its Docker-compatible
pull ignores `tlsVerify`. The daemon pulls the endpoint's name with libpod's pull instead, TLS
not verified for the endpoint alone, and passes its report on as Docker's progress: the image
comes through the endpoint with no registries.conf drop-in at all (the test registry is not on
this Podman's list either, so no other way could get it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.hf_hub import FakeHub
from tests.integration.test_registry_pulls import config_digest
from tests.peers.dockerd import DockerPeer
from tests.peers.nosana_node import node_call
from tests.peers.podman import PodmanPeer
from tests.peers.registry import RegistryPeer

pytestmark = pytest.mark.docker


@pytest.fixture
def podman(docker_peer: DockerPeer, registry: RegistryPeer) -> Iterator[PodmanPeer]:
    """`docker_peer` pushed the test images to `registry`; Podman is told of no insecure
    registry."""
    peer = PodmanPeer().start()
    yield peer
    peer.stop()


def test_the_nodes_pull_on_podman_comes_through_the_endpoint_without_a_drop_in(
    tmp_path: Path, podman: PodmanPeer, registry: RegistryPeer, hub: FakeHub
) -> None:
    socket = Path(f"/tmp/ncn-{os.getpid()}-ppull.sock")
    config: dict[str, dict[str, Any]] = {
        "docker": {"gpu": "none", "fence": "off"},
        "security": {"allow_private_urls": True},  # the test registry is on loopback
        "huggingface": {"endpoint": hub.url, "mirror_port": 0},
        "node": {"socket": str(socket), "engine": f"unix://{podman.socket}"},
    }
    image = f"{registry.host}/nosana/multi:1.0"
    daemon = DaemonProcess(tmp_path, config).start()
    try:
        pulled = node_call(socket, "pull", {"image": image})
        assert "thrown" not in pulled, pulled
        assert not any("error" in e for e in pulled["events"]), pulled["events"]
        assert image in pulled["tags"], pulled  # the node's name...
        assert not any(t.startswith("127.0.0.1:") and "__" in t for t in pulled["tags"])
        direct = config_digest(registry, "nosana/multi:1.0")
        assert pulled["id"].removeprefix("sha256:") == direct.removeprefix("sha256:")
        statuses = [e.get("status", "") for e in pulled["events"]]
        assert statuses[-1] == f"Status: Downloaded newer image for {image}", statuses
        pulls = daemon.client().get("/v1/status")["registry"]["pulls"]
        through = [p for p in pulls if p["image"] == image]
        assert through, pulls
        assert through[0]["bytes_from_upstream"] > 0, pulls  # the bytes came through it
        log = daemon.log()
        assert '"event": "node.image_pulled"' in log
        assert "node.endpoint_unreachable" not in log
    finally:
        assert daemon.stop() == 0
