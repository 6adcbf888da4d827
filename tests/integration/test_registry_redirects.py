"""Blobs a registry redirects to a content host that honours `Range` (Docker Hub's CDN): the
registry endpoint follows the redirect and fetches the blob there in parallel ranged parts,
and a docker-like client gets the exact bytes (tests/fakes/blob_redirect.py)."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.blob_redirect import BlobRedirect
from tests.fakes.server import ThreadedServers
from tests.fakes.static_host import StaticHost
from tests.peers.ollama import push_blob
from tests.peers.procs import free_port
from tests.peers.registry import RegistryPeer

MB = 1024 * 1024


@dataclass
class Setup:
    url: str  # the endpoint
    registry: BlobRedirect
    cdn: StaticHost


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, servers: ThreadedServers, registry: RegistryPeer
) -> Iterator[Setup]:
    cdn = StaticHost(servers)
    redirect = BlobRedirect(servers, registry.url, cdn)
    port = free_port()
    config: dict[str, dict[str, Any]] = {
        "docker": {"registry_mirrors": {"docker.io": redirect.url}, "gpu": "none"},
        "registry": {"listen": f"127.0.0.1:{port}"},
        "download": {"part_size": "1MiB"},  # a small blob in several parts
    }
    daemon = DaemonProcess(tmp_path_factory.mktemp("redirects"), config).start()
    try:
        yield Setup(f"http://127.0.0.1:{port}", redirect, cdn)
    finally:
        assert daemon.stop() == 0


def test_a_redirected_blob_is_fetched_from_the_content_host_in_ranged_parts(
    setup: Setup, registry: RegistryPeer
) -> None:
    data = os.urandom(5 * MB + 123)
    digest = push_blob(registry.url, "nosana/cdn", data)
    setup.cdn.put(f"blobs/{digest}", data)
    with urllib.request.urlopen(f"{setup.url}/v2/nosana/cdn/blobs/{digest}", timeout=30) as got:
        assert got.read() == data
    path = f"/blobs/{digest}"
    ranges = [r for p, r in setup.cdn.traffic.ranges if p == path]
    assert len(ranges) >= 5, ranges  # parallel parts, each its own range, at the CDN
    assert setup.registry.traffic.requests[f"GET /v2/nosana/cdn/blobs/{digest}"] >= 1
    assert setup.cdn.traffic.body_bytes >= len(data)  # the bytes came from there
