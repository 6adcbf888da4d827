"""Cold downloads on each link (issue 19, measure 1): the daemon against every peer.

    python -m bench.transfers [--runs 5] [--sizes 100,400,1000] [--profile cdn]

One repo (LFS files of `sizes` MiB, plus small ones) from the bench's hub and the same bytes as
an S3 prefix from its S3 host, fetched cold by the daemon (`POST /v1/resources?wait=true`) and
by the peers of bench/tools.py, interleaved. On `cdn` and `far` every upstream is behind the
link (bench/link.py); the daemon's figure is also the fraction of the link's aggregate cap it
used (target: 90%). On `loopback` the limits are the machine's: the same bytes fetched by
parallel `curl` into /dev/null, and the disk's sequential write speed (`dd` with fsync); the
tools are also timed "+ sync" there (the daemon's blobs are made durable by the store's
checkpoint, a syncfs every 30 s, so none of them waits for the disk).

Every run also records the CPU it cost (the daemon's own process from /proc, a tool's child
processes from getrusage) and, on a link, the most connections it held open at once.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from collections.abc import Callable
from typing import Any

from bench import tools
from bench.common import (
    Wan,
    daemon,
    disk_write_speed,
    interleave,
    link,
    machine,
    parallel_curl,
    peers,
    process_cpu_seconds,
    save,
    summary,
)
from bench.profiles import PROFILES, SETUP_RTTS, Profile, best_seconds
from bench.profiles import profile as link_profile

MB = 1024 * 1024
REPO = "bench/model"
BUCKET = "bench"
PREFIX = "models/sd"
DAEMON = "daemon"


def spec(sizes: list[int]) -> dict[str, Any]:
    files = {f"model-{i:05}.safetensors": [size * MB, 1000 + i] for i, size in enumerate(sizes)}
    files["config.json"] = [2048, 1]
    files["tokenizer.json"] = [2 * MB, 2]  # below the LFS cut: a git blob
    objects = {f"{PREFIX}/unet/part-{i}.bin": [size * MB, 2000 + i] for i, size in enumerate(sizes)}
    objects[f"{PREFIX}/model_index.json"] = [1024, 3]
    return {"repos": {REPO: files}, "bucket": BUCKET, "objects": objects}


class Meter:
    """Wraps contenders so each run also leaves its CPU seconds and peak connections."""

    def __init__(self, wan: Wan | None, daemon_pid: int) -> None:
        self.wan = wan
        self.daemon_pid = daemon_pid
        self.cpu: dict[str, list[float]] = {}
        self.connections: dict[str, list[int]] = {}
        self.busy: dict[str, list[float]] = {}

    def __call__(self, name: str, run: Callable[[], float]) -> Callable[[], float]:
        def measured() -> float:
            if self.wan is not None:
                self.wan.stats()  # peaks count from here
            ours = process_cpu_seconds(self.daemon_pid)
            children = _children_cpu()
            elapsed = run()
            if name.startswith(DAEMON):
                cost = process_cpu_seconds(self.daemon_pid) - ours
            else:
                cost = _children_cpu() - children
            self.cpu.setdefault(name, []).append(cost)
            if self.wan is not None:
                stats = self.wan.stats()
                used = sum(c["used"] for c in stats["listeners"].values())
                self.connections.setdefault(name, []).append(used)
                self.busy.setdefault(name, []).append(stats["busy_seconds"])
            return elapsed

        return measured


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(runs: int, sizes: list[int], profile: str = "loopback") -> dict[str, Any]:
    wanted = spec(sizes)
    total_hf = sum(size for size, _seed in wanted["repos"][REPO].values())
    total_s3 = sum(size for size, _seed in wanted["objects"].values())
    local = profile == "loopback"
    with link(profile) as wan, peers(wanted, wan) as servers:
        hub, static = servers["hub"], servers["static"]
        config = {
            "huggingface": {"endpoint": hub},
            "s3": {"endpoint_url": static},
            "store": {"min_free": "0"},
        }
        hf_urls = [f"{hub}/{REPO}/resolve/main/{path}" for path in wanted["repos"][REPO]]
        s3_urls = [f"{static}/{BUCKET}/{key}" for key in wanted["objects"]]
        with daemon(config) as cache:
            assert cache.process is not None
            hf_meter, s3_meter = Meter(wan, cache.process.pid), Meter(wan, cache.process.pid)

            def cold(resource: dict[str, Any]) -> float:
                client = cache.client()
                started = time.perf_counter()
                entry = client.request(
                    "POST", "/v1/resources", body=resource, params={"wait": True}, timeout=3600
                )
                elapsed = time.perf_counter() - started
                assert entry["state"] == "ready", entry
                client.request("DELETE", f"/v1/resources/{entry['id']}")
                client.request("POST", "/v1/gc")
                return elapsed

            hf: dict[str, Callable[[], float]] = {
                DAEMON: lambda: cold({"type": "HF", "repo": REPO}),
                "snapshot_download": lambda: tools.snapshot_download(hub, REPO),
                "aria2c -x16 -s16 (SHA-256 checked)": lambda: tools.aria2c_hf(hub, REPO),
            }
            s3: dict[str, Callable[[], float]] = {
                DAEMON: lambda: cold({"type": "S3", "url": f"s3://{BUCKET}/{PREFIX}"}),
                "boto3 transfer manager": lambda: tools.boto3(static, BUCKET, PREFIX),
                "s5cmd": lambda: tools.s5cmd(static, BUCKET, PREFIX),
                "aria2c -x16 -s16 (MD5 checked)": lambda: tools.aria2c_s3(static, BUCKET, PREFIX),
            }
            if local:
                hf["snapshot_download + sync"] = lambda: tools.snapshot_download(hub, REPO, True)
                hf["parallel curl"] = lambda: parallel_curl(hf_urls)
                s3["boto3 transfer manager + sync"] = lambda: tools.boto3(
                    static, BUCKET, PREFIX, True
                )
                s3["parallel curl"] = lambda: parallel_curl(s3_urls)
            hf_times = interleave(runs, {name: hf_meter(name, run) for name, run in hf.items()})
            s3_times = interleave(runs, {name: s3_meter(name, run) for name, run in s3.items()})
        link_stats = wan.stats() if wan is not None else None
    limit = _limit(profile, max(total_hf, total_s3))
    result: dict[str, Any] = {
        "machine": machine(),
        "profile": profile,
        "files_mib": sizes,
        "hf": report(hf_times, hf_meter, total_hf, limit, "snapshot_download"),
        "s3": report(s3_times, s3_meter, total_s3, limit, "boto3 transfer manager"),
        "served_by": _served_by(profile, link_stats),
        "mib_through_each_listener": {
            name: round(c["bytes_down"] / MB, 1)
            for name, c in (link_stats or {"listeners": {}})["listeners"].items()
        },
    }
    if local:
        result["disk_write_mib_s"] = round(limit["disk"] / MB, 1)
    else:
        for kind in ("hf", "s3"):
            _add_ceiling(result[kind], link_profile(profile), kind)
    return result


def _add_ceiling(out: dict[str, Any], link: Profile, kind: str) -> None:
    """The most of the link any client could use for these bytes with the connections the
    daemon used (bench/profiles.py `best_seconds`): what `fraction_of_link` is bounded by."""
    connections = out["connections_used"][DAEMON]
    best = best_seconds(link, out["bytes"], SETUP_RTTS[kind], connections)
    out["link_ceiling"] = {
        "connections": connections,
        "best_s": round(best, 3),
        "fraction_of_link": round(out["bytes"] / best / link.aggregate, 3),
    }


def _limit(profile: str, total: int) -> dict[str, float]:
    """What bounds a download: the link's aggregate cap, or (loopback) the disk's speed."""
    if profile == "loopback":
        return {"disk": disk_write_speed(total)}
    return {"link": link_profile(profile).aggregate}


def _served_by(profile: str, stats: dict[str, Any] | None) -> str:
    where = "directly on loopback" if stats is None else f"through the {profile} link"
    return (
        f"HF: the bench's fake hub (API and resolve) and its content host (LFS redirects), "
        f"S3: the bench's S3 host (ListObjectsV2, ranged GET), all in bench/servers.py, {where}"
    )


def report(
    samples: dict[str, list[float]],
    meter: Meter,
    total: int,
    limit: dict[str, float],
    rival: str,
) -> dict[str, Any]:
    times = {name: summary(values) for name, values in samples.items()}
    ours = times[DAEMON]["median_s"]
    out: dict[str, Any] = {
        "bytes": total,
        "times": times,
        "speedups": {
            name: round(t["median_s"] / ours, 2) for name, t in times.items() if name != DAEMON
        },
        "daemon_mib_s": round(total / ours / MB, 1),
        "core_seconds_per_gib": {
            name: round(_median(v) / (total / 1024**3), 2) for name, v in meter.cpu.items()
        },
        "connections_used": {name: max(v) for name, v in meter.connections.items()},
    }
    out["speedup_vs_" + rival.replace(" ", "_")] = out["speedups"][rival]
    if "link" in limit:
        # Over the whole wait, and while bytes flowed (first byte to last, as the link saw
        # them): the difference is set-up (round trips, slow start) and the end (the view).
        out["fraction_of_link"] = round(total / ours / limit["link"], 3)
        busy = _median(meter.busy[DAEMON])
        out["fraction_of_link_while_transferring"] = round(total / busy / limit["link"], 3)
        out["daemon_busy_s"] = round(busy, 3)
    else:
        machine_limit = min(total / times["parallel curl"]["median_s"], limit["disk"])
        out["fraction_of_machine_limit"] = round(total / ours / machine_limit, 2)
    return out


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="100,400,1000", help="LFS file sizes in MiB")
    parser.add_argument(
        "--profile", default="cdn", help=f"loopback, {', '.join(PROFILES)} (or e.g. cdn@0.25)"
    )
    args = parser.parse_args()
    for tool in ("curl", "aria2c"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (bench/run installs it)")
    result = measure(args.runs, [int(s) for s in args.sizes.split(",")], args.profile)
    print(json.dumps(result, indent=2))
    print(f"saved to {save(f'transfers-{args.profile}', result)}")


if __name__ == "__main__":
    main()
