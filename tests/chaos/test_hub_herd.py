"""The Hub endpoint under a herd: two hundred clients of one cold file, half of them gone after
their first bytes, others asking for ranges, hostile paths among them. Promised: one upstream
fetch, every client that stays gets the file whole and right, hostile paths get 4xx, no lease
and no descriptor left behind, nothing unexpected in the log."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub

MB = 1024 * 1024
CLIENTS = 200
REPO = "hubchaos/herd"
CONTENT = Content.generated(24 * MB + 5, seed=700)
HOSTILE = [
    "/hf/hubchaos/herd/resolve/main/%2e%2e/%2e%2e/v1/status",
    "/hf/hubchaos/herd/resolve/main/a%00b",
    "/hf/hubchaos/herd/resolve/main/..%2fconfig.json",
    "/hf/api/models/hubchaos/herd/tree/main/%2e%2e",
    "/hf/hubchaos/..%2fherd/resolve/main/config.json",
]


@pytest.fixture
def daemon(tmp_path: Path, hub: FakeHub) -> Iterator[DaemonProcess]:
    hub.commit(REPO, {"config.json": b"{}", "w.safetensors": CONTENT})
    process = DaemonProcess(
        tmp_path,
        {
            "huggingface": {"endpoint": hub.url},
            "docker": {"host": f"unix://{tmp_path}/none"},
            "download": {"part_size": "8MiB"},
        },
    ).start()
    yield process
    assert process.stop() == 0
    assert "http.unexpected_error" not in process.log()


def open_files(daemon: DaemonProcess) -> int:
    assert daemon.process is not None
    return len(os.listdir(f"/proc/{daemon.process.pid}/fd"))


async def herd(daemon: DaemonProcess, release: threading.Event, rng: random.Random) -> list[str]:
    """Every client's outcome: `whole`, `range`, `left`, or a hostile path's status."""
    url = f"{daemon.url}/hf/{REPO}/resolve/main/w.safetensors"
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client(i: int) -> str:
            if i % 3 == 1:  # a range somewhere in the file
                start = rng.randrange(0, CONTENT.size - 4096)
                headers = {"Range": f"bytes={start}-{start + 4095}"}
                async with session.get(url, headers=headers) as response:
                    assert response.status == 206
                    assert await response.read() == CONTENT.read(start, start + 4096)
                    return "range"
            async with session.get(url) as response:
                first = await response.content.readexactly(64 * 1024)
                assert first == CONTENT.read(0, 64 * 1024)
                if i % 3 == 2:
                    return "left"  # gone mid-file: the connection closes here
                rest = await response.read()
                assert hashlib.sha256(first + rest).hexdigest() == CONTENT.sha256
                return "whole"

        async def hostile(path: str) -> str:
            async with session.get(URL(daemon.url + path, encoded=True)) as response:
                return str(response.status)

        clients = [asyncio.ensure_future(client(i)) for i in range(CLIENTS)]
        probes = await asyncio.gather(*(hostile(path) for path in HOSTILE))
        await asyncio.sleep(0.5)  # not a race: the herd only grows while upstream is held
        release.set()
        return [*await asyncio.gather(*clients), *probes]


def test_a_herd_on_one_cold_file(daemon: DaemonProcess, hub: FakeHub, rng: random.Random) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    release = threading.Event()
    hub.set_faults(CONTENT, Faults(hold_after=2 * MB, hold=release))
    before = open_files(daemon)
    try:
        outcomes = asyncio.run(herd(daemon, release, rng))
    finally:
        release.set()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    kinds = {kind: outcomes.count(kind) for kind in set(outcomes)}
    assert kinds.pop("whole") + kinds.pop("left") + kinds.pop("range") == CLIENTS
    assert all(status.startswith("4") for status in kinds), kinds
    assert hub.cdn_traffic.count(f"GET /lfs/{CONTENT.sha256}") == 4  # once: one per 8 MiB part
    [entry] = [
        e
        for e in daemon.client().get("/v1/resources")["resources"]
        if e["details"].get("path") == "w.safetensors" and e["details"].get("repo") == REPO
    ]
    deadline = time.monotonic() + 30
    while (entry["leases"] or open_files(daemon) > before + 5) and time.monotonic() < deadline:
        time.sleep(0.2)
        entry = daemon.client().get(f"/v1/resources/{entry['id']}")
    assert entry["state"] == "ready"
    assert entry["leases"] == 0
    assert open_files(daemon) <= before + 5
