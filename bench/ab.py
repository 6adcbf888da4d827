"""A/B of the daemon's cold fetch on a link: variants side by side, interleaved.

    python -m bench.ab PROFILE SIZES RUNS VARIANTS

VARIANTS is JSON: `{"name": [FOLDER, {config overrides}], ...}`; each variant's daemon runs
from FOLDER's `daemon` package (e.g. `git archive HEAD daemon | tar -x -C /tmp/before` for the
code before a change, `.` for the work tree), with the overrides merged into its config.
Every variant fetches the bench's HF repo and S3 prefix (bench/transfers.py's, LFS files of
SIZES MiB) cold, in turn, RUNS times; printed: medians with min and max, MiB/s, the fraction
of the link's aggregate cap, the daemon's CPU per GiB and the connections each run used.
This is how the figures in transfer.py's and the settings' commit messages were taken.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
from typing import Any

from bench.common import daemon, link, peers, process_cpu_seconds
from bench.profiles import profile as link_profile
from bench.transfers import BUCKET, PREFIX, REPO, spec
from tests.daemon_process import DaemonProcess

KINDS = {
    "hf": {"type": "HF", "repo": REPO},
    "s3": {"type": "S3", "url": f"s3://{BUCKET}/{PREFIX}"},
}


def _cold(cache: DaemonProcess, body: dict[str, Any]) -> float:
    client = cache.client()
    started = time.perf_counter()
    entry = client.request("POST", "/v1/resources", body=body, params={"wait": True}, timeout=3600)
    elapsed = time.perf_counter() - started
    assert entry["state"] == "ready", entry
    client.request("DELETE", f"/v1/resources/{entry['id']}")
    client.request("POST", "/v1/gc")
    return elapsed


def main() -> None:
    profile, sizes_arg, runs_arg, variants_arg = sys.argv[1:5]
    sizes, runs = [int(s) for s in sizes_arg.split(",")], int(runs_arg)
    variants: dict[str, list[Any]] = json.loads(variants_arg)
    wanted = spec(sizes)
    totals = {
        "hf": sum(size for size, _ in wanted["repos"][REPO].values()),
        "s3": sum(size for size, _ in wanted["objects"].values()),
    }
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    used: dict[tuple[str, str], list[int]] = {}
    here = os.getcwd()
    with ExitStack() as stack:
        wan = stack.enter_context(link(profile))
        servers = stack.enter_context(peers(wanted, wan))
        base = {
            "huggingface": {"endpoint": servers["hub"]},
            "s3": {"endpoint_url": servers["static"]},
            "store": {"min_free": "0"},
        }
        caches = {}
        for name, (folder, overrides) in variants.items():
            os.chdir(folder)  # `python -m daemon` imports the package from its folder
            caches[name] = stack.enter_context(daemon(base | overrides))
            os.chdir(here)
        for _ in range(runs):
            for kind, body in KINDS.items():
                for name, cache in caches.items():
                    os.sync()
                    if wan is not None:
                        wan.stats()
                    assert cache.process is not None
                    before = process_cpu_seconds(cache.process.pid)
                    times.setdefault((name, kind), []).append(_cold(cache, body))
                    spent = process_cpu_seconds(cache.process.pid) - before
                    cpu.setdefault((name, kind), []).append(spent / (totals[kind] / 2**30))
                    if wan is not None:
                        listeners = wan.stats()["listeners"].values()
                        used.setdefault((name, kind), []).append(sum(c["used"] for c in listeners))
    cap = None if profile == "loopback" else link_profile(profile).aggregate
    for (name, kind), values in times.items():
        median = statistics.median(values)
        rate = totals[kind] / median
        share = f", {rate / cap:.1%} of the link" if cap else ""
        print(
            f"{profile} {kind} {name}: median {median:.2f} s (min {min(values):.2f}, max "
            f"{max(values):.2f}, {len(values)} runs), {rate / 2**20:.0f} MiB/s{share}, "
            f"{statistics.median(cpu[(name, kind)]):.2f} core-s/GiB, "
            f"connections {used.get((name, kind), [])}"
        )


if __name__ == "__main__":
    main()
