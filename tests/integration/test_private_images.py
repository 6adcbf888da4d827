"""Private images: a registry that wants a password, a job that brings it
(`authentication.docker`), and the image gone from the engine once the op ends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.peers.dockerd import DockerPeer
from tests.peers.images import build
from tests.peers.procs import free_port
from tests.peers.registry import RegistryPeer

pytestmark = pytest.mark.docker
USER, SECRET = "nosana-host", "s3cret-registry-password"


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryPeer]:
    peer = RegistryPeer(tmp_path_factory.mktemp("private"), users={USER: SECRET}).start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def private_image(private_registry: RegistryPeer, docker_peer: DockerPeer) -> str:
    """An image pushed with the password, then removed from the engine."""
    client = docker_peer.client()
    name = f"{private_registry.host}/team/secret-app:1"
    build(client, name, {"etc/message": b"from a private image\n"})
    auth = {"username": USER, "password": SECRET}
    for line in client.images.push(name, auth_config=auth, stream=True, decode=True):
        assert "error" not in line, line
    client.images.remove(name, force=True)
    client.close()
    return name


def job(image: str, password: str) -> dict[str, Any]:
    registry = image.split("/", 1)[0]
    return {
        "version": "0.1",
        "type": "container",
        "ops": [
            {
                "type": "container/run",
                "id": "private",
                "args": {
                    "image": image,
                    "cmd": "cat /etc/message",
                    "authentication": {
                        "docker": {"username": USER, "password": password, "server": registry}
                    },
                },
            }
        ],
    }


def test_a_private_image_is_pulled_with_the_jobs_password_and_removed_after(
    tmp_path: Path, docker_peer: DockerPeer, private_image: str
) -> None:
    config: dict[str, dict[str, Any]] = {
        "docker": {"host": docker_peer.host, "gpu": "none"},
        "security": {"allow_private_urls": True},  # the test's registry is on loopback
    }
    daemon = DaemonProcess(tmp_path, config)
    daemon.start()
    engine = docker_peer.client()
    try:
        wrong = daemon.client().request("POST", "/v1/jobs", body=job(private_image, "nope"))
        failed = daemon.wait_job(wrong["id"])
        assert failed["state"] == "failed", failed
        error = failed["ops"][0]["error"]
        assert USER in error, error  # says which credential was refused...
        assert "nope" not in error  # ...never the password
        assert SECRET not in daemon.log()

        right = daemon.client().request("POST", "/v1/jobs", body=job(private_image, SECRET))
        record = daemon.wait_job(right["id"])
        assert record["state"] == "completed", record
        assert daemon.job_logs(right["id"], "private") == "from a private image\n"
        assert record["ops"][0]["image"]["pulled"] is True
        # Through the registry endpoint, the job's credential its token carried upstream:
        # what it fetched is keyed by that credential (private), never anyone's without it.
        entries = daemon.client().get("/v1/resources")["resources"]
        fetched = [e for e in entries if e["type"] == "registry"]
        assert fetched, entries
        assert all(e["details"]["private"] for e in fetched), fetched
        with pytest.raises(docker.errors.ImageNotFound):  # gone with its op, as Nosana does
            engine.images.get(private_image)
        shown = daemon.client().get(f"/v1/jobs/{right['id']}")
        assert SECRET not in str(shown)  # the definition comes back without the password
        auth = shown["definition"]["ops"][0]["args"]["authentication"]["docker"]
        assert auth == {"username": USER, "password": "***", "server": auth["server"]}
    finally:
        engine.close()
        assert daemon.stop() == 0
    assert SECRET not in daemon.log()


@pytest.fixture
def recording_mirror(servers: ThreadedServers, registry: RegistryPeer) -> FaultyProxy:
    """A site's mirror that records what it is asked: the public test registry, which does not
    hold the private image."""
    return FaultyProxy(servers, registry.url)


def mirror_config(
    docker_peer: DockerPeer, private_image: str, mirror: FaultyProxy, share_private: bool
) -> dict[str, dict[str, Any]]:
    registry = private_image.split("/", 1)[0]
    return {
        "docker": {
            "host": docker_peer.host,
            "gpu": "none",
            "registry_mirrors": {registry: mirror.url.removeprefix("http://")},
        },
        "security": {"allow_private_urls": True},
        "site": {"share_private": share_private},
        "registry": {"listen": f"127.0.0.1:{free_port()}"},
        "download": {"max_retries": 1},
    }


@pytest.mark.parametrize("share_private", [False, True])
def test_a_private_pull_skips_the_sites_mirror_unless_private_data_is_shared(
    tmp_path: Path,
    docker_peer: DockerPeer,
    private_image: str,
    recording_mirror: FaultyProxy,
    share_private: bool,
) -> None:
    """A site's pull-through registry serves whatever it pulled to every node, with its own
    credentials: a job's private pull goes through the registry endpoint, which fetches it
    from the image's own registry instead. The mirror does not hold the image, so only a
    pull that went around it can succeed."""
    config = mirror_config(docker_peer, private_image, recording_mirror, share_private)
    daemon = DaemonProcess(tmp_path, config).start()
    try:
        record = daemon.wait_job(
            daemon.client().request("POST", "/v1/jobs", body=job(private_image, SECRET))["id"]
        )
        asked = recording_mirror.traffic.total("GET /v2/team/secret-app/")
        if share_private:
            assert record["state"] == "failed", record
            assert asked > 0  # through the mirror, which has no such image
        else:
            assert record["state"] == "completed", record
            assert daemon.job_logs(record["id"], "private") == "from a private image\n"
            assert recording_mirror.traffic.total() == 0  # never asked at all
            entries = daemon.client().get("/v1/resources")["resources"]
            fetched = [e for e in entries if e["type"] == "registry"]
            assert fetched, entries
            assert all(e["details"]["private"] for e in fetched), entries
    finally:
        assert daemon.stop() == 0


def test_an_engines_private_pull_straight_at_the_endpoint_skips_the_sites_mirror(
    tmp_path: Path, docker_peer: DockerPeer, private_image: str, recording_mirror: FaultyProxy
) -> None:
    """An engine pulling the endpoint's name itself (as the node's socket, registry-mirrors or
    hosts.toml have it do), its credentials reaching the endpoint by its /token: the endpoint
    fetches from the image's own registry, not through the mirror."""
    config = mirror_config(docker_peer, private_image, recording_mirror, share_private=False)
    daemon = DaemonProcess(tmp_path, config).start()
    registry, name = private_image.split("/", 1)
    endpoint = config["registry"]["listen"]
    through = f"{endpoint}/{registry.replace(':', '__')}/{name.rsplit(':', 1)[0]}"
    auth = {"username": USER, "password": SECRET}
    engine = docker_peer.client()
    try:
        direct = engine.images.pull(private_image, auth_config=auth)
        engine.images.remove(private_image, force=True)
        pulled = engine.images.pull(through, tag="1", auth_config=auth)
        assert pulled.id == direct.id  # the image a direct pull gets
        assert recording_mirror.traffic.total() == 0  # the mirror was never asked
        entries = daemon.client().get("/v1/resources")["resources"]
        fetched = [e for e in entries if e["type"] == "registry"]
        assert fetched, entries
        assert all(e["details"]["private"] for e in fetched), entries
        assert all(e["details"]["from"] == f"http://{registry}" for e in fetched), fetched
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(f"{through}:1", force=True)
        engine.close()
        assert daemon.stop() == 0
