"""The real daemon's Hub endpoint over a Hub whose LFS files redirect to signed, expiring CAS
bridge URLs (tests/fakes/cas_bridge.py), as the real Hub's do: a download that outlives its
URL asks the Hub again and goes on from where it was; its reader never notices."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.daemon_process import DaemonProcess
from tests.fakes.cas_bridge import TTL, CasBridge
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.fakes.server import ThreadedServers

MB = 1024 * 1024
REPO = "bridged/model"


@pytest.fixture
def bridge(servers: ThreadedServers) -> CasBridge:
    return CasBridge(servers)


@pytest.fixture
def daemon(tmp_path: Path, servers: ThreadedServers, bridge: CasBridge) -> Iterator[DaemonProcess]:
    hub = FakeHub(servers, bridge=bridge)
    hub.commit(REPO, {"model.safetensors": CONTENT, "config.json": b"{}"})
    config: dict[str, dict[str, Any]] = {
        "huggingface": {"endpoint": hub.url},
        "docker": {"host": f"unix://{tmp_path}/none"},
        "download": {"part_size": "64MiB", "max_retries": 2},  # one part per file
    }
    process = DaemonProcess(tmp_path, config).start()
    yield process
    assert process.stop() == 0


CONTENT = Content.generated(6 * MB + 5, seed=410)


def test_a_download_that_outlives_its_signed_url_asks_the_hub_again_and_resumes(
    daemon: DaemonProcess, bridge: CasBridge
) -> None:
    release = threading.Event()
    faults = Faults(hold_after=2 * MB, hold=release, drop_at_release=True)
    bridge.faults[f"{CONTENT.sha256} bytes=0-"] = faults
    url = f"{daemon.url}/hf/{REPO}/resolve/main/model.safetensors"
    try:
        with requests.get(url, stream=True, timeout=60) as reader:
            assert reader.status_code == 200
            head = reader.raw.read(MB)
            assert faults.held.wait(30)
            bridge.advance(TTL + 1)  # the URL the daemon holds has expired
            release.set()  # and its connection drops
            body = head + reader.raw.read()
    finally:
        release.set()
    assert hashlib.sha256(body).hexdigest() == CONTENT.sha256
    last = CONTENT.size - 1
    assert bridge.asked == [
        (f"bytes=0-{last}", "206"),
        (f"bytes={2 * MB}-{last}", "expired"),
        (f"bytes={2 * MB}-{last}", "206"),  # with the Hub's fresh redirect, from where it was
    ]
