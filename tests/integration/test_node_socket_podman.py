"""Nosana's node on the engine socket in front of Podman (Debian's podman 4.3,
`podman system service` on a socket of the test's own): the node's default engine.

The helper is created through Podman's Docker-compatible API, as the node does; the job
container through libpod's create (`/v4.5.0/libpod/containers/create`), whose `env` and
`hostadd` get the Hub endpoint's variables and host entry.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.hf_hub import FakeHub
from tests.integration import node_socket_cases as cases
from tests.peers.dockerd import DockerPeer
from tests.peers.nosana_node import node_call
from tests.peers.podman import IMAGE, PodmanPeer
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer

pytestmark = pytest.mark.docker

SUBNET = {"subnet": "10.231.18.0/24", "gateway": "10.231.18.1"}


@pytest.fixture(scope="module")
def podman() -> Iterator[PodmanPeer]:
    peer = PodmanPeer().start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory,
    podman: PodmanPeer,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    hub: FakeHub,
    s3: S3Peer,
) -> Iterator[DaemonProcess]:
    socket = Path(f"/tmp/ncn-{os.getpid()}-podman.sock")
    store = podman.root / "store"
    config = {
        # The daemon's own engine (the Hub listener's bridge) is Docker's; the node's, Podman.
        **docker_peer.daemon_config(registry.host),
        "store": {"path": str(store)},
        "huggingface": {"endpoint": hub.url, "mirror_port": 0},
        "s3": {"endpoint_url": s3.url},
        "ollama": {"registry": registry.url},
        "node": {"socket": str(socket), "engine": f"unix://{podman.socket}"},
    }
    process = DaemonProcess(tmp_path_factory.mktemp("node-podman"), config).start()
    yield process
    assert process.stop() == 0
    shutil.rmtree(store, ignore_errors=True)


def socket_of(daemon: DaemonProcess) -> Path:
    return Path(daemon.config["node"]["socket"])


def test_hf_helper_and_a_libpod_job_container(daemon: DaemonProcess, hub: FakeHub) -> None:
    hot = cases.hf_cold_then_hot(daemon, socket_of(daemon), hub)
    expected = cases.tree(Path(hot["mountpoint"]))
    result = cases.job_sees_target(
        socket_of(daemon), hot["volumeName"], expected, image=IMAGE, podman=True, **SUBNET
    )
    env = dict(item.split("=", 1) for item in result["env"])
    assert env["HF_ENDPOINT"].startswith("http://nosana-cache.internal:")
    assert env["MODEL_ENDPOINT"].endswith("/hf/")


def test_private_s3_helper(daemon: DaemonProcess, s3: S3Peer) -> None:
    cases.s3_private(daemon, socket_of(daemon), s3)


def test_ollama_helper(daemon: DaemonProcess, registry: RegistryPeer) -> None:
    cases.ollama_cold_then_hot(daemon, socket_of(daemon), registry)


def test_missing_resource(daemon: DaemonProcess) -> None:
    cases.missing_resource(daemon, socket_of(daemon))


def test_podman_health_through_the_socket(daemon: DaemonProcess) -> None:
    assert node_call(socket_of(daemon), "health") == {"healthy": True}
