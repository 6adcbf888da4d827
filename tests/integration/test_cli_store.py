"""The store through the real daemon and the CLI: ls, show, rm, gc, verify, exit codes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

from daemon.settings import StoreSettings
from daemon.store import Store
from daemon.util.clock import SystemClock
from tests.daemon_process import DaemonProcess
from tests.unit.store.upstream import MemoryUpstream, request


def populate(root: Path) -> dict[str, str]:
    """Fill a store before the daemon starts, as an earlier run of it would have."""

    async def fill() -> dict[str, str]:
        ids = {}
        async with Store.open(StoreSettings(path=root, min_free=0), clock=SystemClock()) as store:
            for name, files in {
                "model": {"weights.bin": os.urandom(300_000), "config.json": b"{}"},
                "other": {"data.txt": b"other data"},
            }.items():
                lease = await store.acquire(request(name), MemoryUpstream(files), holder="setup")
                await store.release(lease)
                ids[name] = lease.entry.id
        return ids

    return asyncio.run(fill())


def test_resources_ls_show_rm_gc_verify(tmp_path: Path) -> None:
    ids = populate(tmp_path / "store")
    daemon = DaemonProcess(tmp_path).start()
    try:
        listing = daemon.cli("resources", "ls")
        assert listing.returncode == 0, listing.stderr
        assert "mem://model" in listing.stdout
        assert "in 23h" in listing.stdout
        assert "293.0 KiB" in listing.stdout
        as_json = json.loads(daemon.cli("resources", "ls", "--json").stdout)
        assert {e["id"] for e in as_json["resources"]} == set(ids.values())

        shown = daemon.cli("resources", "show", ids["model"][:12], "--files")
        assert shown.returncode == 0, shown.stderr
        assert f"id           {ids['model']}" in shown.stdout
        assert "weights.bin" in shown.stdout

        assert daemon.cli("resources", "show", "ffffffffffff").returncode == 1

        removed = daemon.cli("resources", "rm", ids["other"][:12])
        assert removed.returncode == 0, removed.stderr
        assert ids["other"] not in daemon.cli("resources", "ls").stdout

        swept = json.loads(daemon.cli("gc", "--json").stdout)
        assert swept["entries_removed"] == 0

        assert daemon.cli("verify").returncode == 0
        blob = tmp_path / "store" / "blobs" / "sha256"
        victim = next(p for p in blob.glob("*/*") if p.stat().st_size == 300_000)
        os.chmod(victim, 0o644)
        victim.write_bytes(b"\0" * 300_000)
        damaged = daemon.cli("verify")
        assert damaged.returncode == 1
        assert "1 corrupt" in damaged.stderr
        assert ids["model"] in damaged.stderr
        state = daemon.client().get(f"/v1/resources/{ids['model']}")["state"]
        assert state == "failed"
        assert hashlib.sha256(b"\0" * 300_000).hexdigest() not in {
            p.parent.name + p.name for p in blob.glob("*/*")
        }
    finally:
        assert daemon.stop() == 0
