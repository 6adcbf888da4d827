"""Every benchmark in one run; writes bench/results/<date>.json and docs/benchmarks.md.

    bench/run [--runs 5] [--quick] [--profile loopback,cdn,far] [--resume]

--profile picks the links the downloads are measured on (bench/profiles.py; `cdn@0.25` scales
a profile's rates for a machine that cannot feed them); the service job, the site store's
and the Hub endpoint's benchmarks run on `cdn` (or the first link given), the image pulls'
(bench/image.py) on every link given. --quick uses small
sizes and fewer runs, to check the suite itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench import (
    cold,
    cpu,
    hub,
    image,
    jobs,
    linkcheck,
    memory,
    report,
    service,
    services,
    site,
    transfers,
)
from bench.common import ROOT, machine
from bench.store import bench_acquire_and_view, bench_sweep

Step = tuple[str, Callable[[], dict[str, Any]]]


def steps(runs: int, quick: bool, profiles: list[str]) -> list[Step]:
    sizes = [20, 50] if quick else [100, 400, 1000]
    job_sizes = [20, 50] if quick else [100, 300]
    links = [p for p in profiles if p != "loopback"]
    service_on = "cdn" if "cdn" in links else (links[0] if links else None)
    out: list[Step] = []
    for name in links:
        out.append((f"link_check_{name}", partial(linkcheck.check, name, quick)))
    for name in profiles:
        out.append((f"transfers_{name}", partial(transfers.measure, runs, sizes, name)))
    if service_on is not None:
        out.append(("service_job", lambda: service.measure(runs, job_sizes, service_on)))
    out += [
        ("cpu", lambda: cpu.measure(runs, sizes, "loopback")),
        ("site_store", lambda: site.measure(runs, job_sizes, service_on or "loopback")),
        ("cold_job_start", lambda: cold.cold_start(runs, job_sizes)),
        ("warm_job_start", lambda: jobs.measure(max(runs, 5))),
        ("service_ready", lambda: services.measure(runs, [8, 16] if quick else [256, 1024])),
        ("dedup", lambda: cold.dedup(10, 5 if quick else 20)),
        ("herd", lambda: cold.herd(10 if quick else 50, 20 if quick else 200)),
        ("memory", lambda: memory.measure(1 if quick else 4, 1000 if quick else 10_000)),
        (
            "hub",
            lambda: hub.measure(
                1 if quick else max(runs, 3),
                [20] * 3 if quick else [500] * 3,
                service_on or "loopback",
            ),
        ),
        (
            "image",
            lambda: image.run(
                1 if quick else max(runs, 3),
                [16, 4, 1] if quick else [1536, 64, 16, 4],
                links or ["cdn"],
            ),
        ),
        ("scale", lambda: _scale(10_000 if quick else 100_000, 100_000 if quick else 1_000_000)),
    ]
    return out


def run(runs: int, quick: bool, path: Path, resume: bool, profiles: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": machine(),
        "runs": runs,
        "quick": quick,
        "profiles": profiles,
    }
    if resume and path.exists():
        results = json.loads(path.read_text())
    for name, step in steps(runs, quick, profiles):
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
    parser.add_argument("--profile", default="loopback,cdn,far", help="links, comma-separated")
    parser.add_argument(
        "--report", action="store_true", help="With --quick: write a report in bench/results."
    )
    args = parser.parse_args()
    day = time.strftime("%Y-%m-%d")
    path = ROOT / "bench" / "results" / f"{day}{'-quick' if args.quick else ''}.json"
    results = run(args.runs, args.quick, path, args.resume, args.profile.split(","))
    print(f"results: {path}")
    if not args.quick:
        print(f"report: {report.write(results, path)}")
    elif args.report:  # a check of the report itself: beside the results, not in docs/
        print(f"report: {report.write(results, path, path.parent / 'quick-report')}")


if __name__ == "__main__":
    main()
