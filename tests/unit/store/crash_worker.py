"""A daemon-like process that fills a store, to be killed with SIGKILL at a random moment.

    python -m tests.unit.store.crash_worker STORE_ROOT

Deterministic content (seeded) so the parent can check every byte after recovery.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from daemon.settings import StoreSettings
from daemon.store import Store
from daemon.util.clock import SystemClock
from tests.unit.store.upstream import MemoryUpstream, request


def upstream_files() -> dict[str, dict[str, bytes]]:
    """Two requests: one of large files (resumable), one of many small files (long view)."""
    rng = random.Random(7)
    large = {f"w/part-{i}.bin": rng.randbytes(9 * 1024 * 1024 + i) for i in range(3)}
    small = {f"tok/{i // 100}/f{i}.txt": rng.randbytes(rng.randint(0, 300)) for i in range(2500)}
    small["w/part-0.bin"] = large["w/part-0.bin"]  # a blob both requests share
    return {"large": large, "small": small}


async def main(root: Path) -> None:
    settings = StoreSettings(path=root, min_free=0)
    async with Store.open(settings, clock=SystemClock()) as store:
        files = upstream_files()
        ups = {name: MemoryUpstream(data, delay=0.0005) for name, data in files.items()}
        await asyncio.gather(
            *(store.acquire(request(n), u, holder="worker") for n, u in ups.items())
        )
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
