"""The node's pull through the engine socket on a Podman that does not trust the registry
endpoint: Podman, unlike Docker, pulls from no plain-HTTP registry it was not told of, and its
Docker-compatible pull ignores `tlsVerify`. The engine's refusal comes in the progress stream,
before any layer: the daemon keeps that line back, pulls as the node asked instead, and says
what the operator sets (`nosana-cache registry config --engine podman`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.hf_hub import FakeHub
from tests.peers.dockerd import DockerPeer
from tests.peers.nosana_node import node_call
from tests.peers.podman import PodmanPeer
from tests.peers.registry import RegistryPeer

pytestmark = pytest.mark.docker


@pytest.fixture
def podman(docker_peer: DockerPeer, registry: RegistryPeer) -> Iterator[PodmanPeer]:
    """`docker_peer` pushed the test images to `registry`, which Podman may use in plain HTTP;
    the daemon's endpoint is not on its list."""
    peer = PodmanPeer(insecure=(registry.host,)).start()
    yield peer
    peer.stop()


def test_a_podman_that_refuses_the_endpoint_gets_the_image_the_way_the_node_asked(
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
        assert image in pulled["tags"], pulled
        log = daemon.log()
        assert '"event": "node.endpoint_unreachable"' in log  # tried, and said why not
        assert "nosana-cache registry config --engine podman" in log
        assert "server gave HTTP response to HTTPS client" in log
    finally:
        assert daemon.stop() == 0
