"""Podman (Debian's 4.3) pulling through the registry endpoint by a registries.conf of its own,
each mirror's location carrying a path: `127.0.0.1:PORT/docker.io` for Docker Hub names,
`127.0.0.1:PORT/ghcr.io` for another registry (Podman then asks `/v2/ghcr.io/<name>/...`).

The daemon's `docker.registry_mirrors` sends both registries' content to the test registry,
behind a counting proxy; the image Podman gets is the one a direct pull gets.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.peers.dockerd import DockerPeer
from tests.peers.podman_cli import PodmanCli, mirror_conf
from tests.peers.procs import free_port
from tests.peers.registry import RegistryPeer

ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass
class Setup:
    daemon: DaemonProcess
    endpoint: str  # HOST:PORT
    upstream: FaultyProxy
    podman: PodmanCli


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    servers: ThreadedServers,
    registry: RegistryPeer,
    docker_peer: DockerPeer,  # publishes the standard images to the registry
) -> Iterator[Setup]:
    upstream = FaultyProxy(servers, registry.url)
    host = upstream.url.removeprefix("http://")
    endpoint = f"127.0.0.1:{free_port()}"
    config: dict[str, dict[str, Any]] = {
        "docker": {"registry_mirrors": {"docker.io": host, "ghcr.io": host}, "gpu": "none"},
        "registry": {"listen": endpoint},
    }
    daemon = DaemonProcess(tmp_path_factory.mktemp("podman"), config).start()
    podman = PodmanCli(
        mirror_conf("docker.io", f"{endpoint}/docker.io")
        + mirror_conf("ghcr.io", f"{endpoint}/ghcr.io")
    )
    try:
        yield Setup(daemon, endpoint, upstream, podman)
    finally:
        podman.stop()
        assert daemon.stop() == 0


def direct(registry: RegistryPeer, name: str, tag: str) -> tuple[str, str]:
    """The manifest digest and the config digest the registry itself gives."""
    request = urllib.request.Request(
        f"{registry.url}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        digest = response.headers["Docker-Content-Digest"]
        return digest, json.load(response)["config"]["digest"]


def asked(upstream: FaultyProxy, name: str) -> int:
    return sum(n for k, n in upstream.traffic.requests.items() if f"/v2/{name}/" in k)


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("docker.io/library/busybox:latest", "library/busybox"),  # Docker Hub, mirror .../docker.io
        ("ghcr.io/nosana/multi:1.0", "nosana/multi"),  # another registry, mirror .../ghcr.io
    ],
)
def test_podman_pulls_through_a_mirror_location_with_a_path(
    setup: Setup, registry: RegistryPeer, reference: str, name: str
) -> None:
    pulled = setup.podman.pull(reference)
    assert pulled.returncode == 0, pulled.stderr
    digest, config = direct(registry, name, reference.rsplit(":", 1)[1])
    image = setup.podman.inspect(reference)
    assert image["Digest"] == digest  # the manifest a direct pull gets...
    assert f"sha256:{image['Id']}" == config  # ...and the image
    assert asked(setup.upstream, name) > 0  # the endpoint fetched it
    entries = setup.daemon.client().get("/v1/resources")["resources"]
    registry_name = reference.split("/", 1)[0]
    tag = f"{registry_name}/{reference.split('/', 1)[1]} (tag)"
    assert tag in {e["source"] for e in entries}, entries

    direct_ref = f"{registry.host}/{name}:{reference.rsplit(':', 1)[1]}"
    again = setup.podman.run("pull", "--quiet", "--tls-verify=false", direct_ref)
    assert again.returncode == 0, again.stderr
    assert setup.podman.inspect(direct_ref)["Digest"] == image["Digest"]
