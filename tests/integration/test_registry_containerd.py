"""containerd's `ctr` pulling through the registry endpoint with the `hosts.toml` that
`nosana-cache registry config --engine containerd` prints: every registry through one host,
the upstream named in the `ns` query.

A private containerd (tests/peers/containerd.py); the daemon's `docker.registry_mirrors`
sends Docker Hub's and ghcr.io's content to the test registry, behind a counting proxy.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.peers.containerd import ContainerdPeer
from tests.peers.dockerd import DockerPeer
from tests.peers.procs import free_port
from tests.peers.registry import RegistryPeer

ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
)


@dataclass
class Setup:
    daemon: DaemonProcess
    upstream: FaultyProxy
    containerd: ContainerdPeer
    hosts_dir: Path


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    servers: ThreadedServers,
    registry: RegistryPeer,
    docker_peer: DockerPeer,  # publishes the standard images to the registry
) -> Iterator[Setup]:
    upstream = FaultyProxy(servers, registry.url)
    host = upstream.url.removeprefix("http://")
    config: dict[str, dict[str, Any]] = {
        "docker": {"registry_mirrors": {"docker.io": host, "ghcr.io": host}, "gpu": "none"},
        "registry": {"listen": f"127.0.0.1:{free_port()}"},
    }
    root = tmp_path_factory.mktemp("containerd")
    daemon = DaemonProcess(root, config).start()
    printed = daemon.cli("registry", "config", "--engine", "containerd")
    assert printed.returncode == 0, printed.stderr
    hosts_dir = root / "certs.d"
    (hosts_dir / "_default").mkdir(parents=True)
    (hosts_dir / "_default" / "hosts.toml").write_text(printed.stdout)
    containerd = ContainerdPeer().start()
    try:
        yield Setup(daemon, upstream, containerd, hosts_dir)
    finally:
        containerd.stop()
        assert daemon.stop() == 0


def direct_digest(registry: RegistryPeer, name: str, tag: str) -> str:
    request = urllib.request.Request(
        f"{registry.url}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Docker-Content-Digest"])


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("docker.io/library/busybox:latest", "library/busybox"),
        ("ghcr.io/nosana/multi:1.0", "nosana/multi"),
    ],
)
def test_ctr_pulls_every_registry_through_the_printed_hosts_toml(
    setup: Setup, registry: RegistryPeer, reference: str, name: str
) -> None:
    pulled = setup.containerd.pull(reference, setup.hosts_dir)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    digest = direct_digest(registry, name, reference.rsplit(":", 1)[1])
    assert setup.containerd.digest(reference) == digest  # what a direct pull resolves
    asked = [k for k in setup.upstream.traffic.requests if f"/v2/{name}/" in k]
    assert any("/blobs/" in k for k in asked), asked  # the endpoint fetched the layers
    entries = setup.daemon.client().get("/v1/resources")["resources"]
    assert f"{reference} (tag)" in {e["source"] for e in entries}  # the upstream ns named
