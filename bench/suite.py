"""Every benchmark in one run; writes bench/results/<date>.json and docs/benchmarks.md.

    bench/run [--runs 5] [--quick]

--quick uses small sizes and fewer runs, to check the suite itself in a minute or two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import cold, hub, jobs, memory, report, transfers
from bench.common import ROOT, machine
from bench.store import bench_acquire_and_view, bench_sweep


def run(runs: int, quick: bool, path: Path, resume: bool) -> dict[str, Any]:
    sizes = [20, 50] if quick else [100, 400, 1000]
    results: dict[str, Any] = {"machine": machine(), "runs": runs, "quick": quick}
    if resume and path.exists():
        results = json.loads(path.read_text())
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("transfers", lambda: transfers.measure(runs, sizes)),
        ("cold_job_start", lambda: cold.cold_start(runs, [20, 50] if quick else [100, 300])),
        ("warm_job_start", lambda: jobs.measure(max(runs, 5))),
        ("dedup", lambda: cold.dedup(10, 5 if quick else 20)),
        ("herd", lambda: cold.herd(10 if quick else 50, 20 if quick else 200)),
        ("memory", lambda: memory.measure(1 if quick else 4, 1000 if quick else 10_000)),
        (
            "hub",
            lambda: hub.measure(1 if quick else max(runs, 3), [20] * 3 if quick else [500] * 3),
        ),
        ("scale", lambda: _scale(10_000 if quick else 100_000, 100_000 if quick else 1_000_000)),
    ]
    for name, step in steps:
        if name in results:
            continue  # --resume: measured already
        started = time.monotonic()
        print(f"== {name}", flush=True)
        results[name] = step()
        results[name]["benchmark_seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps(results[name], indent=1)[:2000], flush=True)
        path.write_text(json.dumps(results, indent=2) + "\n")  # a later failure keeps this
    return results


def _scale(entries: int, blobs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "acquire_and_view": asyncio.run(bench_acquire_and_view(Path(tmp) / "a")),
            "sweep": asyncio.run(bench_sweep(Path(tmp) / "b", entries, blobs)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--resume", action="store_true", help="Keep today's finished steps.")
    args = parser.parse_args()
    day = time.strftime("%Y-%m-%d")
    path = ROOT / "bench" / "results" / f"{day}{'-quick' if args.quick else ''}.json"
    results = run(args.runs, args.quick, path, args.resume)
    print(f"results: {path}")
    if not args.quick:
        print(f"report: {report.write(results, path)}")


if __name__ == "__main__":
    main()
