"""A registry token that expires while the registry endpoint is still fetching a blob's parts:
the part that meets the expiry gets a fresh token (one, for the parts refused together) and the
fetch completes; the engine gets the whole blob, its digest checked.

The daemon's `docker.registry_mirrors` sends Docker Hub names to the test registry behind the
test bed's token gate (tests/fakes/bearer.py), behind a proxy that holds a part's request until
the test has expired every token the gate issued: which request meets the expired token is
the test's choice, never a race with a clock.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.bearer import BearerGate
from tests.fakes.faults import Faults
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.peers.ollama import push_blob
from tests.peers.procs import free_port
from tests.peers.registry import RegistryPeer

MB = 1024 * 1024
PART = MB


@dataclass
class Setup:
    url: str  # the endpoint
    front: FaultyProxy  # between the endpoint and the gate: holds a part's request
    gate: BearerGate


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, servers: ThreadedServers, registry: RegistryPeer
) -> Iterator[Setup]:
    gate = BearerGate(servers, registry.url, lifetime=60)  # as Docker Hub's tokens
    front = FaultyProxy(servers, gate.url)
    port = free_port()
    config: dict[str, dict[str, Any]] = {
        "docker": {"registry_mirrors": {"docker.io": front.url}, "gpu": "none"},
        "registry": {"listen": f"127.0.0.1:{port}"},
        "download": {"part_size": "1MiB"},  # a small blob in several parts
    }
    daemon = DaemonProcess(tmp_path_factory.mktemp("tokens"), config).start()
    try:
        yield Setup(f"http://127.0.0.1:{port}", front, gate)
    finally:
        assert daemon.stop() == 0


def read(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def test_a_token_that_expires_mid_blob_is_renewed_and_the_blob_served_whole(
    setup: Setup, registry: RegistryPeer
) -> None:
    data = os.urandom(3 * PART)  # the first part is answered before the others are asked
    digest = push_blob(registry.url, "nosana/expiring", data)
    path = f"/v2/nosana/expiring/blobs/{digest}"
    release = threading.Event()
    held = [Faults(hold=release, hold_answer=True, held=threading.Event()) for _ in range(2)]
    setup.front.faults[f"{path} bytes={PART}-"] = held[0]  # the second part's request...
    setup.front.faults[f"{path} bytes={2 * PART}-"] = held[1]  # ...and the third's
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            reading = pool.submit(read, f"{setup.url}{path}")
            for faults in held:  # held before the gate looks at their token
                assert faults.held.wait(30), "the part's request never came"
            tokens = setup.gate.traffic.requests["GET /token"]
            setup.gate.expire()
            release.set()
            body = reading.result(timeout=60)
    finally:
        release.set()
        for key in list(setup.front.faults):
            del setup.front.faults[key]
    assert hashlib.sha256(body).hexdigest() == digest.removeprefix("sha256:")
    assert body == data
    refused = sorted(setup.gate.refused_expired)
    assert refused == [
        f"GET {path} bytes={PART}-{2 * PART - 1}",
        f"GET {path} bytes={2 * PART}-{3 * PART - 1}",
    ]  # each part's request after the expiry got a 401...
    assert setup.gate.traffic.requests["GET /token"] == tokens + 1  # ...and one renewal
