"""Nosana's node, unchanged, on the engine socket (`node.socket`) in front of a private dockerd.

The node's calls come from dockerode with the node's options in the node's order
(tests/peers/nosana_node.mjs): the resource helper per resource (pull, volume create, create,
start, followed logs, wait, remove, volume inspect), then the job container with the volume at
its target; and calls the daemon only passes through (pull progress, exec, followed logs, wait).
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.hf_hub import FakeHub
from tests.integration import node_socket_cases as cases
from tests.peers.dockerd import DockerPeer
from tests.peers.nosana_node import node_call
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer

pytestmark = pytest.mark.docker

SUBNET = {"subnet": "10.231.17.0/24", "gateway": "10.231.17.1"}
"""NOSANA_GATEWAY's own subnet (192.168.101.0/24) would collide between two test engines."""


def node_config(
    docker_peer: DockerPeer, registry: RegistryPeer, hub: FakeHub, s3: S3Peer, socket: Path
) -> dict[str, dict[str, Any]]:
    return {
        **docker_peer.daemon_config(registry.host),
        "huggingface": {"endpoint": hub.url, "mirror_port": 0},
        "s3": {"endpoint_url": s3.url},
        "ollama": {"registry": registry.url},
        "node": {"socket": str(socket)},
    }


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    hub: FakeHub,
    s3: S3Peer,
) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("node-socket")
    socket = Path(f"/tmp/ncn-{os.getpid()}.sock")  # unix socket paths: 108 bytes at most
    config = node_config(docker_peer, registry, hub, s3, socket)
    # dockerd makes its data-root a mount of its own where / is not a shared mount (as here):
    # hard links reach its volumes only from a store inside that mount (README).
    store = docker_peer.root / "data" / f"nosana-cache-{os.getpid()}"
    config["store"] = {"path": str(store)}
    process = DaemonProcess(root, config).start()
    process.socket = socket  # type: ignore[attr-defined]
    yield process
    assert process.stop() == 0
    assert not socket.exists(), "the socket file goes with the daemon"
    shutil.rmtree(store, ignore_errors=True)


def socket_of(daemon: DaemonProcess) -> Path:
    socket: Path = daemon.socket  # type: ignore[attr-defined]
    return socket


def test_hf_helper_cold_then_hot_and_the_job_sees_it_at_target(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    hot = cases.hf_cold_then_hot(daemon, socket_of(daemon), hub)
    expected = cases.tree(Path(hot["mountpoint"]))
    result = cases.job_sees_target(
        socket_of(daemon), hot["volumeName"], expected, image="ubuntu:latest", **SUBNET
    )
    env = dict(item.split("=", 1) for item in result["env"])
    assert env["HF_ENDPOINT"].startswith("http://nosana-cache.internal:")
    assert env["HF_HUB_DISABLE_XET"] == "1"
    assert env["NOSANA_ID"] == "job-1"
    assert result["hosts"][:2] == [
        "host.docker.internal:8.8.8.8",
        "host.containers.internal:8.8.8.8",
    ]
    assert result["hosts"][2].startswith("nosana-cache.internal:")


def test_a_job_that_sets_hf_endpoint_keeps_it(daemon: DaemonProcess, hub: FakeHub) -> None:
    hot = cases.hf_cold_then_hot(daemon, socket_of(daemon), hub)
    expected = cases.tree(Path(hot["mountpoint"]))
    result = cases.job_sees_target(
        socket_of(daemon),
        hot["volumeName"],
        expected,
        image="ubuntu:latest",
        env={"HF_ENDPOINT": "http://elsewhere.example"},
        **SUBNET,
    )
    env = dict(item.split("=", 1) for item in result["env"])
    assert env["HF_ENDPOINT"] == "http://elsewhere.example"
    assert "HF_HUB_DISABLE_XET" not in env
    assert result["hosts"] == ["host.docker.internal:8.8.8.8", "host.containers.internal:8.8.8.8"]


def test_private_s3_helper_cold_then_hot(daemon: DaemonProcess, s3: S3Peer) -> None:
    cases.s3_private(daemon, socket_of(daemon), s3)
    status = daemon.cli("status")
    assert status.returncode == 0, status.stderr
    assert f"node     socket {socket_of(daemon)}" in status.stdout
    assert " hit " in status.stdout, status.stdout


def test_ollama_helper_cold_then_hot(daemon: DaemonProcess, registry: RegistryPeer) -> None:
    cases.ollama_cold_then_hot(daemon, socket_of(daemon), registry)


def test_a_resource_upstream_lacks_fails_as_the_helper_does(daemon: DaemonProcess) -> None:
    cases.missing_resource(daemon, socket_of(daemon))


def test_allow_write_volume_gets_copies_not_the_store(daemon: DaemonProcess, s3: S3Peer) -> None:
    hot = cases.s3_private(daemon, socket_of(daemon), s3)
    volume = Path(hot["mountpoint"])
    assert os.stat(volume / "a.bin").st_nlink > 1, "a read-only fill links the store's blob"
    before = cases.tree(volume)
    result = node_call(
        socket_of(daemon),
        "job",
        {
            "name": cases.unique("writer"),
            "image": "ubuntu:latest",
            "cmd": ["sh", "-c", "echo changed > /data/a.bin && cat /data/a.bin"],
            "env": {},
            "volumes": [{"dest": "/data", "name": hot["volumeName"], "readonly": False}],
            **SUBNET,
        },
    )
    assert result["exit"] == 0, result
    assert result["logs"] == ["changed"], result
    assert os.stat(volume / "sub/b.json").st_nlink == 1, "copies, no links left"
    assert cases.tree(Path(hot["view"])) == before, "the store's view is unchanged"


def test_pull_progress_exec_logs_and_wait_pass_through(daemon: DaemonProcess) -> None:
    result = node_call(socket_of(daemon), "passthrough", {"image": "ubuntu:latest"})
    assert "thrown" not in result, result
    assert result["pullEvents"] >= 2, result
    assert any("Status:" in s for s in result["pullStatuses"]), result
    assert result["execOut"] == "exec-out\n"
    assert result["execErr"] == "exec-err\n"
    assert result["execExit"] == 3
    assert result["followed"] is True
    assert result["waited"] == 137


def test_the_daemon_killed_the_node_sees_a_dead_engine_and_a_restart_serves_again(
    tmp_path: Path, docker_peer: DockerPeer, registry: RegistryPeer, hub: FakeHub, s3: S3Peer
) -> None:
    socket = Path(f"/tmp/ncn-{os.getpid()}-kill.sock")
    config = node_config(docker_peer, registry, hub, s3, socket)
    process = DaemonProcess(tmp_path, config).start()
    try:
        assert node_call(socket, "health") == {"healthy": True}
        process.stop(signal.SIGKILL)
        dead = node_call(socket, "health")
        assert dead["healthy"] is False, dead
        assert dead["error"] in ("ECONNREFUSED", "ENOENT"), dead
        process.start()  # a stale socket file is replaced
        assert node_call(socket, "health") == {"healthy": True}
    finally:
        process.stop()
    assert not socket.exists()
