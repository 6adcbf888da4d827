"""kill -9 of the real daemon, fifty times, while it downloads, builds views, commits to its
index and sweeps expired entries.

After every kill the store is opened the way the daemon opens it (recovery included) and
checked from outside: every ready entry serves upstream's bytes exactly, nothing unfinished
looks ready, no orphan temp file or blob is left. At the end the daemon finishes everything
it was asked, from where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from daemon.cli.client import ApiError
from daemon.settings import StoreSettings
from daemon.store import Store
from daemon.util.clock import SystemClock
from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.store_checks import check_consistent

MB = 1024 * 1024
KILLS = int(os.environ.get("CHAOS_KILLS", "50"))


def upstream(hub: FakeHub) -> tuple[dict[str, dict[str, bytes]], list[Content]]:
    """Four repos: large LFS files in parts, many small files, and files they share."""
    shared = Content.generated(6 * MB, seed=7001)
    repos: dict[str, dict[str, bytes | Content]] = {
        "chaos/large": {
            "a.safetensors": Content.generated(24 * MB, seed=7002),
            "b.safetensors": Content.generated(12 * MB, seed=7003),
            "shared.safetensors": shared,
        },
        "chaos/many": {
            f"tok/{i // 50}/f{i}.json": f'{{"i": {i}}}'.encode() * (1 + i % 7) for i in range(300)
        }
        | {"shared.safetensors": shared},
        "chaos/mixed": {
            "w.safetensors": Content.generated(9 * MB, seed=7004),
            "shared.safetensors": shared,
            "config.json": b'{"mixed": true}',
        },
        "chaos/small": {"README.md": b"# small\n", "config.json": b"{}"},
    }
    expected = {}
    large = [c for files in repos.values() for c in files.values() if isinstance(c, Content)]
    for repo, files in repos.items():
        hub.commit(repo, files)
        expected[f"hf://{repo}@main"] = {
            p: c.read() if isinstance(c, Content) else c for p, c in files.items()
        }
    return expected, large


def what_was_interrupted(store: Path) -> str:
    views = store / "views"
    if views.exists() and any(p.name.endswith(".partial") for p in views.iterdir()):
        return "view build"
    tmp = store / "tmp"
    with contextlib.suppress(FileNotFoundError):
        if any(p.stat().st_size for p in tmp.iterdir()):
            return "blob ingest"
    return "index or sweep"


def check_offline(store: Path, expected: dict[str, dict[str, bytes]]) -> int:
    async def check() -> int:
        settings = StoreSettings(path=store, min_free=0)
        async with Store.open(settings, clock=SystemClock()) as opened:
            return await check_consistent(opened, expected)

    return asyncio.run(check())


def provoke(
    daemon: DaemonProcess,
    hub: FakeHub,
    rng: random.Random,
    repos: list[str],
    slow_contents: list[Content],
    store: Path,
) -> None:
    """Give the daemon work (deletions, downloads, a sweep), then wait for the moment to kill."""
    client = daemon.client()
    for entry in client.get("/v1/resources")["resources"]:
        if entry["state"] == "ready" and rng.random() < 0.5:
            # Gone again: the next request downloads it anew. It may have started
            # downloading in between (a resumed download): 409, and that is fine.
            with contextlib.suppress(ApiError):
                client.request("DELETE", f"/v1/resources/{entry['id']}")
    for content in slow_contents:  # each large file pauses once, somewhere
        pause_at = rng.randrange(content.size)
        hub.set_faults(content, Faults(stall_after=pause_at, stall_seconds=0.3, stall_times=1))
    for repo in rng.sample(repos, k=rng.randint(1, len(repos))):
        client.request("POST", "/v1/resources", body={"type": "HF", "repo": repo})
    if rng.random() < 0.3:
        client.request("POST", "/v1/gc")
    aim = rng.choice(["blob ingest", "view build", "any moment", "any moment"])
    if aim == "any moment":
        time.sleep(rng.uniform(0.0, 1.5))
    else:
        deadline = time.monotonic() + 5
        while what_was_interrupted(store) != aim and time.monotonic() < deadline:
            time.sleep(0.001)


def test_kill_9_fifty_times_loses_nothing(tmp_path: Path, hub: FakeHub, rng: random.Random) -> None:
    expected, slow_contents = upstream(hub)
    repos = [source.removeprefix("hf://").removesuffix("@main") for source in expected]
    config: dict[str, dict[str, Any]] = {
        # Short lives and frequent sweeps: kills land in evictions too.
        "store": {"ttl": "2s", "sweep_interval": "1s", "min_free": "0"},
        "download": {"part_size": "4MiB"},
    }
    store = tmp_path / "store"
    interrupted: dict[str, int] = {}
    ready_seen = 0
    port = None
    for _ in range(KILLS):
        daemon = DaemonProcess(tmp_path, config, env={"HF_ENDPOINT": hub.url}, port=port)
        port = daemon.port
        daemon.start()
        try:
            provoke(daemon, hub, rng, repos, slow_contents, store)
        finally:
            assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        phase = what_was_interrupted(store)
        interrupted[phase] = interrupted.get(phase, 0) + 1
        ready_seen += check_offline(store, expected)

    assert interrupted.get("blob ingest", 0) >= 5, interrupted
    assert sum(interrupted.values()) == KILLS
    assert ready_seen > 0, "no kill found a ready entry: the loop never got that far"
    assert '"reason": "expired"' in daemon.log(), "no sweep evicted anything during the kills"

    daemon = DaemonProcess(tmp_path, config, env={"HF_ENDPOINT": hub.url}, port=port).start()
    try:
        client = daemon.client()
        for repo in repos:
            entry = client.request(
                "POST", "/v1/resources", body={"type": "HF", "repo": repo}, params={"wait": True}
            )
            assert entry["state"] == "ready", entry
            view = Path(entry["path"])
            for path, data in expected[f"hf://{repo}@main"].items():
                assert (view / path).read_bytes() == data
        verified = client.request("POST", "/v1/verify")
        assert verified["corrupt"] == [], verified
        assert verified["missing"] == [], verified
    finally:
        assert daemon.stop() == 0
    check_offline(store, expected)
    print(f"kills: {KILLS}, interrupted: {interrupted}, ready entries checked: {ready_seen}")
