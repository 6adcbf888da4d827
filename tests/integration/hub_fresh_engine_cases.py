"""Run by test_hub_fresh_engine.py inside a network namespace (see there); not collected alone.

Here no `docker0` has ever existed: the engine started below makes it, on an empty data root,
and so records no `Gateway` for its default bridge (issue 24), which the first case checks
before anything else, so that these cases test what a freshly set up host has.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from daemon.engine.gateway import interface_ipv4
from daemon.engine.networks import BRIDGE_NAME, SHARED_NETWORK
from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.peers.dockerd import DockerPeer
from tests.peers.images import build

MB = 1024 * 1024
REPO = "fresh/model"
WEIGHTS = Content.generated(3 * MB, seed=2400)
FETCH = (
    "grep nosana-cache.internal /etc/hosts | cut -f1; echo $HF_ENDPOINT;"
    f" wget -q -O /tmp/w $HF_ENDPOINT/{REPO}/resolve/main/w.safetensors && sha256sum /tmp/w"
)


@pytest.fixture(autouse=True, scope="module")
def _inside_the_namespace() -> None:
    assert os.environ.get("FRESH_ENGINE_NAMESPACE"), "run through test_hub_fresh_engine.py"


@contextmanager
def fresh_engine(*options: str) -> Iterator[DockerPeer]:
    """A private engine on an empty data root, holding the jobs' image (nothing to pull)."""
    peer = DockerPeer(options=list(options)).start()
    try:
        client = peer.client()
        build(client, "ubuntu:latest")
        client.close()
        yield peer
    finally:
        peer.stop()


@contextmanager
def daemon_on(root: Path, engine: DockerPeer, hub: FakeHub) -> Iterator[DaemonProcess]:
    hub.commit(REPO, {"config.json": b"{}", "w.safetensors": WEIGHTS})
    config: dict[str, dict[str, Any]] = {
        "docker": {"host": engine.host, "gpu": "none"},
        "huggingface": {"endpoint": hub.url},
    }
    process = DaemonProcess(root, config).start()
    try:
        yield process
    finally:
        assert process.stop() == 0


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerPeer]:
    assert interface_ipv4("docker0") is None  # nothing here made one before
    with fresh_engine() as peer:
        yield peer


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, engine: DockerPeer, hub: FakeHub
) -> Iterator[DaemonProcess]:
    with daemon_on(tmp_path_factory.mktemp("fresh"), engine, hub) as process:
        yield process


def test_the_engine_is_fresh_its_default_bridge_has_no_gateway(engine: DockerPeer) -> None:
    client: docker.DockerClient = engine.client()
    bridge = client.api.inspect_network("bridge")
    client.close()
    configs = bridge["IPAM"]["Config"]
    assert configs, bridge
    assert [config.get("Gateway") for config in configs] == [None] * len(configs), configs
    assert interface_ipv4("docker0") is not None  # yet the host holds an address on it


def test_the_listener_is_bound_on_docker0_and_status_says_so(daemon: DaemonProcess) -> None:
    listener = daemon.client().get("/v1/status")["hub_listener"]
    docker0 = interface_ipv4("docker0")
    assert listener["state"] == "bound", listener
    address, port = listener["address"].rsplit(":", 1)
    assert address == docker0
    assert listener["source"] == "the host's address on docker0 (the default bridge network)"
    assert listener["url"] == f"http://nosana-cache.internal:{port}/hf"
    human = daemon.cli("status")
    assert human.returncode == 0, human.stderr
    assert f"job containers' listener on {listener['address']}" in human.stdout


def run(daemon: DaemonProcess, *ops: dict[str, Any]) -> dict[str, Any]:
    definition = {"version": "0.1", "type": "container", "ops": list(ops)}
    job = daemon.client().request("POST", "/v1/jobs", body=definition)
    record: dict[str, Any] = daemon.wait_job(job["id"], timeout=180)
    errors = [
        (o["id"], o.get("error"), daemon.job_logs(record["id"], o["id"])) for o in record["ops"]
    ]
    assert record["state"] == "completed", errors
    return record


def op(op_id: str) -> dict[str, Any]:
    return {"type": "container/run", "id": op_id, "args": {"image": "ubuntu", "cmd": FETCH}}


@pytest.mark.parametrize("network", ["shared", "own"])
def test_a_job_container_downloads_through_hf_endpoint(daemon: DaemonProcess, network: str) -> None:
    """On the shared job network (one container), and on a job's own (two): both reach the
    listener on docker0's address through their own bridge's gateway."""
    ops = [op("only")] if network == "shared" else [op("first"), op("second")]
    assert_downloaded(daemon, run(daemon, *ops), interface_ipv4("docker0"))


def assert_downloaded(daemon: DaemonProcess, record: dict[str, Any], host: str | None) -> None:
    """Each op saw `nosana-cache.internal` at `host` and the `HF_ENDPOINT` status names, and
    fetched the weights through it."""
    url = daemon.client().get("/v1/status")["hub_listener"]["url"]
    for each in record["ops"]:
        lines = daemon.job_logs(record["id"], each["id"]).splitlines()
        assert lines[0] == host, lines
        assert lines[1] == url, lines
        assert lines[2].split()[0] == WEIGHTS.sha256, lines


def test_an_engine_without_a_default_bridge_gets_the_shared_job_networks_gateway(
    tmp_path: Path, hub: FakeHub
) -> None:
    """`--bridge=none`: no `bridge` network at all. The listener makes the shared job network
    and binds the host's address on it; a job on its own network reaches it there."""
    with fresh_engine("--bridge=none") as bare, daemon_on(tmp_path, bare, hub) as daemon:
        listener = daemon.client().get("/v1/status")["hub_listener"]  # bound by now
        assert listener["state"] == "bound", listener
        client = bare.client()
        with pytest.raises(docker.errors.NotFound):
            client.api.inspect_network("bridge")
        shared = client.api.inspect_network(SHARED_NETWORK)
        client.close()
        interface = shared["Options"][BRIDGE_NAME]
        assert listener["source"] == (
            f"the host's address on {interface} (the job network {SHARED_NETWORK})"
        )
        gateway = interface_ipv4(interface)
        assert listener["address"].rsplit(":", 1)[0] == gateway
        assert_downloaded(daemon, run(daemon, op("first"), op("second")), gateway)
