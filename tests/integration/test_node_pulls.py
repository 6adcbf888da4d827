"""The node's image pulls through the engine socket go through the registry endpoint: dockerode's
`pull` and `followProgress`, as the node pulls a job's image (tests/peers/nosana_node.mjs).

The daemon's `docker.registry_mirrors` sends Docker Hub names to the test registry behind a
counting proxy (as tests/integration/test_registry_pulls.py does for the daemon's own pulls).
"""

from __future__ import annotations

import os
from pathlib import Path

import docker.errors
import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.hf_hub import FakeHub
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.integration.test_node_socket import node_config
from tests.integration.test_registry_pulls import blob_gets, config_digest, image  # noqa: F401
from tests.peers.dockerd import DockerPeer
from tests.peers.nosana_node import node_call
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer

pytestmark = pytest.mark.docker


def test_the_nodes_pull_comes_through_the_endpoint_and_again_from_the_store(
    tmp_path: Path,
    servers: ThreadedServers,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    hub: FakeHub,
    s3: S3Peer,
    image: str,  # noqa: F811
) -> None:
    upstream = FaultyProxy(servers, registry.url)
    socket = Path(f"/tmp/ncn-{os.getpid()}-pull.sock")
    config = node_config(docker_peer, registry, hub, s3, socket)
    config["docker"] = docker_peer.daemon_config(upstream.url.removeprefix("http://"))["docker"]
    daemon = DaemonProcess(tmp_path, config).start()
    engine = docker_peer.client()
    try:
        pulled = node_call(socket, "pull", {"image": image})
        assert "thrown" not in pulled, pulled
        assert pulled["id"] == config_digest(registry, image)  # the image of a direct pull
        assert pulled["tags"] == [image]  # the node's name; the endpoint's tag removed
        assert not any("127.0.0.1" in t for i in engine.images.list() for t in i.tags)
        statuses = [e.get("status", "") for e in pulled["events"]]
        assert not any("error" in e for e in pulled["events"]), pulled["events"]
        assert statuses[-1] == f"Status: Downloaded newer image for {image}", statuses
        assert any(s.startswith("Digest: sha256:") for s in statuses), statuses
        assert '"event": "node.image_pulled"' in daemon.log()
        blobs = blob_gets(upstream)
        assert blobs >= 2  # the layers and the config, fetched by the endpoint

        engine.images.remove(image, force=True)
        again = node_call(socket, "pull", {"image": image})
        assert again["id"] == pulled["id"], again
        assert again["tags"] == [image], again
        assert blob_gets(upstream) == blobs  # every layer from the store
    finally:
        engine.close()
        assert daemon.stop() == 0


def test_a_pull_the_endpoint_cannot_serve_fails_in_the_stream_with_its_cause(
    tmp_path: Path,
    servers: ThreadedServers,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    hub: FakeHub,
    s3: S3Peer,
) -> None:
    socket = Path(f"/tmp/ncn-{os.getpid()}-pullx.sock")
    daemon = DaemonProcess(tmp_path, node_config(docker_peer, registry, hub, s3, socket)).start()
    try:
        failed = node_call(socket, "pull", {"image": "nodepull/absent:1"})
        assert "thrown" in failed, failed
        assert failed["statusCode"] == 404, failed
        assert "the registry answered 404" in failed["thrown"], failed  # the endpoint's word
        client = docker_peer.client()
        try:
            with pytest.raises(docker.errors.ImageNotFound):
                client.images.get("nodepull/absent:1")
        finally:
            client.close()
    finally:
        assert daemon.stop() == 0
