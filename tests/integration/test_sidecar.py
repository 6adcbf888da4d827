"""The daemon as a sidecar container built from the Dockerfile, offline.

The base image is a Debian root made with debootstrap (from Debian's package registry, the one
network these machines reach) imported as `python:3.11-slim-bookworm`; the project's wheels are
built on the host and handed to the build with PIP_NO_INDEX. The container drives the test
bed's engine through its socket, and its store is mounted at another path than the host's, so
a job's bind mount only resolves if `store.host_path` is honoured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.cli.client import Client, DaemonUnreachable
from tests.fakes.hf_hub import FakeHub
from tests.peers.dockerd import DockerPeer
from tests.peers.firewall import fence_rules
from tests.peers.procs import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BASE = "python:3.11-slim-bookworm"


def _base_image(docker_peer: DockerPeer, scratch: Path) -> None:
    client = docker_peer.client()
    if client.images.list(name=BASE):
        return
    debootstrap = shutil.which("debootstrap")
    assert debootstrap is not None, "debootstrap is needed (apt-get install debootstrap)"
    rootfs = scratch / "rootfs"
    subprocess.run(
        [
            debootstrap,
            "--variant=minbase",
            "--include=python3,python3-venv,iptables",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    archive = scratch / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    with open(archive, "rb") as handle:
        client.api.import_image_from_data(
            handle.read(), repository=BASE.split(":")[0], tag=BASE.split(":")[1]
        )


def _context(scratch: Path) -> Path:
    context = scratch / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md", "Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(
        ROOT / "daemon", context / "daemon", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = context / "wheels"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "-w", str(wheels), str(ROOT)], check=True, timeout=900
    )
    subprocess.run(
        [*pip, "download", "--quiet", "-d", str(wheels), "setuptools>=68", "wheel"],
        check=True,
        timeout=300,
    )
    return context


def test_the_sidecar_container_runs_a_job_with_its_store_mapped_to_the_host(
    tmp_path_factory: pytest.TempPathFactory, docker_peer: DockerPeer, hub: FakeHub
) -> None:
    scratch = tmp_path_factory.mktemp("sidecar")
    _base_image(docker_peer, scratch)
    client = docker_peer.client()
    client.images.build(
        path=str(_context(scratch)),
        tag="nosana-cache:test",
        buildargs={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/src/wheels"},
        rm=True,
    )
    store = scratch / "host-store"
    store.mkdir()
    os.chown(store, 10001, 10001)
    hub.commit("sidecar/model", {"config.json": b"{}", "weights.bin": b"w" * 1000})
    port = free_port()
    socket_gid = os.stat(docker_peer.socket).st_gid
    volumes = {
        str(docker_peer.socket): {"bind": "/var/run/docker.sock", "mode": "rw"},
        str(store): {"bind": "/var/lib/nosana-cache", "mode": "rw"},
    }
    environment = {
        "NOSANA_CACHE_STORE__HOST_PATH": str(store),
        "NOSANA_CACHE_STORE__MIN_FREE": "0",
        "NOSANA_CACHE_API__LISTEN": f"127.0.0.1:{port}",
        "NOSANA_CACHE_DOCKER__HOST": "unix:///var/run/docker.sock",
        "NOSANA_CACHE_DOCKER__GPU": "none",
        "HF_ENDPOINT": hub.url,
    }
    fence = _fence_step(client, "--install", volumes, environment)
    assert "fence up" in fence, fence
    container = client.containers.run(
        "nosana-cache:test",
        detach=True,
        network_mode="host",
        group_add=[str(socket_gid)],
        volumes=volumes,
        environment=environment,
    )
    try:
        api = Client(f"http://127.0.0.1:{port}", timeout=5)
        deadline = time.monotonic() + 60
        while True:
            try:
                api.get("/healthz")
                break
            except DaemonUnreachable:
                assert time.monotonic() < deadline, container.logs().decode()[-3000:]
                time.sleep(0.2)
        assert container.attrs["Config"]["User"] == "nosana-cache"
        status = api.get("/v1/status")["fence"]
        assert status["state"] == "fenced", status  # trusted from the one-shot step's stamp
        assert "installed by `nosana-cache fence --install`" in status["detail"]
        # On the host's network the sidecar sees docker0 and binds the Hub's listener there.
        listener = api.get("/v1/status")["hub_listener"]
        assert listener["state"] == "bound", listener
        assert listener["source"] == "the host's address on docker0 (the default bridge network)"
        job = {
            "version": "0.1",
            "type": "container",
            "ops": [
                {
                    "type": "container/run",
                    "id": "ls",
                    "args": {
                        "image": "ubuntu",
                        "cmd": ["ls", "/m"],
                        "resources": [{"type": "HF", "repo": "sidecar/model", "target": "/m"}],
                    },
                }
            ],
        }
        record = api.request("POST", "/v1/jobs", body=job, params={"wait": True}, timeout=300)
        assert record["state"] == "completed", record
        output = b"".join(api.stream_lines(f"/v1/jobs/{record['id']}/logs")).decode()
        assert output.split() == ["config.json", "weights.bin"]
        assert (
            store / "views" / record["ops"][0]["resources"][0]["entry_id"] / "weights.bin"
        ).exists()
        env = [f"NOSANA_CACHE_API__LISTEN=127.0.0.1:{port}"]
        health = container.exec_run(["nosana-cache", "health"], environment=env)
        assert health.exit_code == 0, health.output  # what HEALTHCHECK runs
    finally:
        container.remove(force=True)
        removed = _fence_step(client, "--remove", volumes, environment)
    assert "no rule of it is left" in removed, removed
    assert not fence_rules()


def _fence_step(
    client: Any, action: str, volumes: dict[str, Any], environment: dict[str, str]
) -> str:
    """The sidecar's privileged step, as the README gives it: a one-shot container of the
    image as root with NET_ADMIN on the host's network."""
    output = client.containers.run(
        "nosana-cache:test",
        ["fence", action],
        user="root",
        cap_add=["NET_ADMIN"],
        network_mode="host",
        volumes=volumes,
        environment=environment,
        remove=True,
    )
    return str(output.decode())
