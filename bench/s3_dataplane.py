"""S3's data plane, A/B: transfer.py's ranged parallel GETs against aiobotocore's get_object.

    python -m bench.s3_dataplane [--runs 5] [--sizes 100,400,1000]

Both sides are the daemon's own S3 source in one process, on the same store settings, the
same listing, HEADs and verification (the objects carry CRC64NVMEs, as S3 keeps them); only
the resolver's `fetch` differs:
- A, transfer.py: what the daemon does (parts of `download.part_size`, at most
  `download.concurrency` at a time, 1 MiB write buffer, signed per request);
- B, get_object: the same parts, the same concurrency and write buffer, each part a ranged
  `get_object` through the control plane's aiobotocore client, its body streamed into the
  blob. (No resume after a drop: this side only has to be fast, on a host that does not fail.)
Runs alternate A and B, each cold (the entry deleted and its blobs collected in between),
after one untimed run of each.
The S3 host is bench/servers.py's streaming one, in a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import machine, peers, save, scratch, summary
from daemon.cache import Cache
from daemon.resources import S3Resource, parse_resource
from daemon.settings import Settings, load_settings
from daemon.sources import Sources
from daemon.sources.s3 import S3Resolver
from daemon.store import BlobSink, FileSpec, Store
from daemon.util.aiotasks import all_or_nothing
from daemon.util.clock import SystemClock

MB = 1024 * 1024
BUCKET = "bench"
PREFIX = "models/dataplane"
WRITE_BUFFER = 512 * 1024


class GetObjectResolver(S3Resolver):
    """B: an S3 resolver whose bytes come through aiobotocore's get_object, part by part."""

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        place, (_kind, key) = file.locator
        settings = self.transfer.settings
        slots = asyncio.Semaphore(settings.concurrency)
        who = await self._who()

        async def part(start: int, end: int) -> None:
            async with slots, self.control.clients.use(place, who) as client:
                answer = await client.get_object(
                    Bucket=place.bucket, Key=key, Range=f"bytes={start}-{end - 1}"
                )
                offset, pending = start, bytearray()
                async for chunk in answer["Body"].iter_chunks(256 * 1024):
                    pending += chunk
                    if len(pending) >= WRITE_BUFFER:
                        await sink.write(offset, bytes(pending))
                        offset, pending = offset + len(pending), bytearray()
                if pending:
                    await sink.write(offset, bytes(pending))

        ranges = [
            (offset, min(end, offset + settings.part_size))
            for start, end in sink.missing()
            for offset in range(start, end, settings.part_size)
        ]
        await all_or_nothing([part(start, end) for start, end in ranges])


async def cold(cache: Cache, resource: S3Resource, *, get_object: bool) -> float:
    """Seconds to a ready entry from nothing; the entry and its blobs are gone afterwards."""
    fetch = cache.sources.s3.request(resource)
    request, resolver = fetch.request, fetch.resolver
    if get_object:
        resolver = GetObjectResolver(
            resolver.control, resolver.transfer, resolver.places, resolver.credentials
        )
    started = time.perf_counter()
    entry = await cache.store.wait_ready(request, resolver)
    elapsed = time.perf_counter() - started
    assert entry.state.value == "ready", entry
    await cache.store.delete(entry.id)
    await cache.store.gc()
    return elapsed


def measure(runs: int, sizes: list[int]) -> dict[str, Any]:
    objects = {f"{PREFIX}/part-{i}.bin": [size * MB, 3000 + i] for i, size in enumerate(sizes)}
    total = sum(size for size, _seed in objects.values())
    root = Path(tempfile.mkdtemp(prefix="bench-dataplane-", dir=scratch()))
    try:
        with peers({"bucket": BUCKET, "objects": objects}) as servers:
            settings = load_settings(
                None,
                {
                    "HOME": str(root),
                    "NOSANA_CACHE_STORE__PATH": str(root / "store"),
                    "NOSANA_CACHE_STORE__MIN_FREE": "0",
                    "NOSANA_CACHE_S3__ENDPOINT_URL": servers["static"],
                },
            )
            resource = parse_resource({"type": "S3", "url": f"s3://{BUCKET}/{PREFIX}"})
            assert isinstance(resource, S3Resource)
            samples = asyncio.run(_interleaved(settings, resource, runs))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    times = {name: summary(values) for name, values in samples.items()}
    a, b = times["transfer.py"]["median_s"], times["get_object"]["median_s"]
    return {
        "machine": machine(),
        "files_mib": sizes,
        "bytes": total,
        "times": times,
        "samples_s": {name: [round(v, 3) for v in values] for name, values in samples.items()},
        "transfer_py_mib_s": round(total / a / MB, 1),
        "get_object_mib_s": round(total / b / MB, 1),
        "transfer_py_speedup": round(b / a, 2),
    }


async def _interleaved(
    settings: Settings, resource: S3Resource, runs: int
) -> dict[str, list[float]]:
    clock = SystemClock()
    async with Store.open(settings.store, clock=clock) as store:
        sources = Sources(settings, clock=clock)
        await sources.start()
        cache = Cache(store, sources)
        samples: dict[str, list[float]] = {"transfer.py": [], "get_object": []}
        try:
            for get_object in (False, True):  # untimed: clients made, S3's model loaded
                await cold(cache, resource, get_object=get_object)
            for _ in range(runs):  # as bench.common.interleave, on this loop
                for name in samples:
                    await asyncio.to_thread(os.sync)  # no run pays for another's dirty pages
                    samples[name].append(
                        await cold(cache, resource, get_object=name != "transfer.py")
                    )
            return samples
        finally:
            await cache.close()
            await sources.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="100,400,1000", help="object sizes in MiB")
    args = parser.parse_args()
    result = measure(args.runs, [int(s) for s in args.sizes.split(",")])
    print(json.dumps(result, indent=2))
    print(f"saved to {save('s3-dataplane', result)}")


if __name__ == "__main__":
    main()
