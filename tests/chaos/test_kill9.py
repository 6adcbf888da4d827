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

from daemon.clock import SystemClock
from daemon.settings import StoreSettings
from daemon.store import Store
from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.store_checks import check_consistent

MB = 1024 * 1024
KILLS = int(os.environ.get("CHAOS_KILLS", "50"))


def upstream(hub: FakeHub) -> dict[str, dict[str, bytes]]:
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
    for repo, files in repos.items():
        hub.commit(repo, files)
        expected[f"hf://{repo}@main"] = {
            p: c.read() if isinstance(c, Content) else c for p, c in files.items()
        }
    return expected


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


def test_kill_9_fifty_times_loses_nothing(tmp_path: Path, hub: FakeHub, rng: random.Random) -> None:
    expected = upstream(hub)
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
        client = daemon.client()
        for repo in rng.sample(repos, k=rng.randint(1, len(repos))):
            client.request("POST", "/v1/resources", body={"type": "HF", "repo": repo})
        if rng.random() < 0.3:
            client.request("POST", "/v1/gc")
        time.sleep(rng.uniform(0.0, 1.2))
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        phase = what_was_interrupted(store)
        interrupted[phase] = interrupted.get(phase, 0) + 1
        ready_seen += check_offline(store, expected)

    assert interrupted.get("blob ingest", 0) >= 5, interrupted
    assert ready_seen > 0, "no kill found a ready entry: the loop never got that far"
    assert "entry.evicted" in daemon.log(), "no sweep ran during the kills"

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
