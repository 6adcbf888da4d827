"""kill -9 at random moments: recovery keeps every ready entry, serves nothing partial,
resumes or cleans what was unfinished, and removes orphan temp files and blobs."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.settings import StoreSettings
from daemon.store import EntryState, Store
from daemon.util.clock import SystemClock
from tests.store_checks import check_consistent
from tests.unit.store.crash_worker import upstream_files
from tests.unit.store.upstream import MemoryUpstream, request

ROOT = Path(__file__).resolve().parents[3]


def mid_view(root: Path) -> bool:
    views = root / "views"
    return views.exists() and any(p.name.endswith(".partial") for p in views.iterdir())


def mid_ingest(root: Path) -> bool:
    tmp = root / "tmp"
    if not tmp.exists():
        return False
    for part in tmp.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if part.stat().st_size > 4 * 1024 * 1024:
                return True
    return False


def run_worker(
    store_root: Path, kill_after: float | None, when: Callable[[Path], bool] | None = None
) -> tuple[bool, str]:
    """Run the worker; SIGKILL it after `kill_after` seconds, or as soon as `when(root)` holds.
    Returns whether it finished, and what the kill interrupted."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.unit.store.crash_worker", str(store_root)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + (kill_after if kill_after is not None else 300)
    while process.poll() is None and time.monotonic() < deadline:
        if when is not None and when(store_root):
            break
        time.sleep(0.002)
    if process.poll() is not None:
        assert process.returncode == 0
        return True, "nothing"
    what = "view" if mid_view(store_root) else "ingest" if mid_ingest(store_root) else "other"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return False, what


@pytest.mark.slow
async def test_kill_9_at_random_points_then_recover(tmp_path: Path) -> None:
    root = tmp_path / "store"
    expected = upstream_files()
    by_source = {f"mem://{name}": files for name, files in expected.items()}
    rng = random.Random(int(os.environ.get("CRASH_SEED", "1")))
    interrupted: list[str] = []
    plan: list[tuple[float, Callable[[Path], bool] | None]] = [
        (30.0, mid_ingest),
        (rng.uniform(0.2, 2.0), None),
        (30.0, mid_ingest),
        (rng.uniform(0.2, 2.0), None),
        (30.0, mid_view),
        (rng.uniform(0.2, 2.0), None),
    ]
    for kill_after, when in plan:
        finished, what = run_worker(root, kill_after, when)
        interrupted.append(what)
        async with Store.open(StoreSettings(path=root, min_free=0), clock=SystemClock()) as store:
            await check_consistent(store, by_source)
        if finished:
            break
    assert "ingest" in interrupted
    assert "view" in interrupted or "nothing" in interrupted
    started = time.monotonic()
    assert run_worker(root, kill_after=None)[0]
    async with Store.open(StoreSettings(path=root, min_free=0), clock=SystemClock()) as store:
        await check_consistent(store, by_source)
        ready = await store.entries([EntryState.READY])
        assert {e.source for e in ready} == {"mem://large", "mem://small"}
        # Everything is here: acquiring again is a pure hit.
        for name, files in expected.items():
            upstream = MemoryUpstream(files)
            lease = await store.acquire(request(name), upstream, holder="check")
            assert lease.hit
            assert upstream.fetched == {}
    assert time.monotonic() - started < 120
