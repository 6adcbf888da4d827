"""Jobs of many ops (issue 25): `parse_job`'s wall time and peak memory by shape and size.

    python -m bench.bounds [--runs 3]

The growth itself is held by tests/unit/jobs/test_job_bounds.py (the graph's edges and peak
memory, which do not depend on the machine); this says what it costs here, in seconds. Jobs
past `job.ops` (1,000) are validated here with the bound lifted, as the tests do, to show
the growth well past it; a client's job of that size is refused before it is read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench.common import machine, save, summary
from daemon.jobs.spec import parse_job
from tests.unit.jobs.test_job_bounds import SHAPES

SIZES = (1_000, 4_000, 10_000, 20_000)


def _once(make: Callable[[int], dict[str, Any]], n: int) -> tuple[float, int]:
    document = make(n)
    started = time.perf_counter()
    parse_job(document, max_ops=n)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    try:
        parse_job(document, max_ops=n)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return elapsed, peak


def measure(runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for shape, make in SHAPES.items():
        for n in SIZES:
            samples, peak = [], 0
            for _ in range(runs):
                elapsed, peak = _once(make, n)
                samples.append(elapsed)
            out[f"{shape}/{n}"] = summary(samples) | {"peak_mib": round(peak / 2**20, 1)}
            print(f"{shape:>18} {n:>6} ops  {out[f'{shape}/{n}']}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report = {"machine": machine(), "parse_job": measure(args.runs)}
    print(json.dumps(report, indent=2))
    print(f"saved {save('bounds', report)}", file=sys.stderr)


if __name__ == "__main__":
    main()
