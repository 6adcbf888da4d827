"""Session-wide peers: the real servers every later test talks to, each started on first use.

A private dockerd, a docker-registry holding busybox images (the seed job's `ubuntu` among
them), two S3 implementations (moto's server and s3rver) and a faithful HF hub. They run on
loopback only and stop at the end of the session. A peer that cannot start fails the tests
that need it; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.hf_hub import FakeHub
from tests.fakes.server import ThreadedServers
from tests.peers.dockerd import DockerPeer
from tests.peers.images import publish
from tests.peers.procs import PEER_PIDS
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer
from tests.peers.s3rver import S3rverPeer

# huggingface_hub must never reach the internet. Xet stays on, as in the images jobs run:
# nothing the fake hub or the daemon sends makes a client try it.
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("AWS_CA_BUNDLE", None)


@pytest.fixture(scope="session")
def servers() -> Iterator[ThreadedServers]:
    threaded = ThreadedServers()
    threaded.start()
    yield threaded
    threaded.stop()


@pytest.fixture(scope="session")
def hub(servers: ThreadedServers) -> FakeHub:
    return FakeHub(servers)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryPeer]:
    peer = RegistryPeer(tmp_path_factory.mktemp("registry")).start()
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def docker_peer(registry: RegistryPeer) -> Iterator[DockerPeer]:
    peer = DockerPeer(mirror=registry.url).start()
    try:
        client = peer.client()
        publish(client, registry.host)
        client.close()
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="session")
def second_docker_peer() -> Iterator[DockerPeer]:
    """Another node's engine, for tests of a site's nodes: no mirror, nothing pulled."""
    peer = DockerPeer().start()
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Peer]:
    peer = S3Peer().start()
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def s3rver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3rverPeer]:
    peer = S3rverPeer(tmp_path_factory.mktemp("s3rver")).start()
    yield peer
    peer.stop()


@pytest.fixture(params=["moto", "s3rver"])
def any_s3(request: pytest.FixtureRequest) -> S3Peer | S3rverPeer:
    """Each S3 implementation of the test bed in turn, for what both of them do."""
    peer: S3Peer | S3rverPeer = request.getfixturevalue(
        "s3" if request.param == "moto" else "s3rver"
    )
    return peer


def _children() -> set[int]:
    """Live child processes of this test process (zombies excluded)."""
    me = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


@pytest.fixture(autouse=True)
def _no_processes_left_behind() -> Iterator[None]:
    """A test that leaves a process running fails (kopf does the same for tasks)."""
    before = _children()
    yield
    deadline = time.monotonic() + 5
    while (left := _children() - before - PEER_PIDS) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes left behind: {sorted(left)}"


def assert_no_stray_tasks() -> None:
    """For async fixtures' teardown: nothing but the current task may still run."""
    current = asyncio.current_task()
    stray = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not stray, f"tasks left behind: {[t.get_name() for t in stray]}"
