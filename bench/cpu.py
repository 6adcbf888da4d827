"""CPU per GiB of a cold fetch, and where the daemon's goes (issue 19, measure 5).

    python -m bench.cpu [--runs 5] [--sizes 100,400,1000] [--profile loopback]

Core-seconds per GiB (user + system, all threads) of:
- the daemon fetching the bench's HF repo cold (receive, hash, verify, write, index);
- the same bytes received and written by one `curl` a file at once, then `sha256sum` over
  them: the same work done by C tools, the floor to compare with.
Then one more cold fetch under py-spy (sampling the daemon's threads, idle ones left out),
summed by the function on top of each stack and by the kind of work, so the report can say
where the daemon's time goes. On loopback by default: the link's relay and the servers are
then the only other processes, and the figure is the daemon's own whatever the link.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import tools
from bench.common import daemon, interleave, link, peers, process_cpu_seconds, save, scratch
from bench.transfers import REPO, spec

GiB = 1024**3
KINDS = (
    ("sha256 and other digests", ("hashlib", "_hashlib", "update (digests", "Hashes.update")),
    ("writing blobs (pwrite)", ("pwrite", "_write (daemon/store/blobs")),
    ("reading back for the hash", ("pread", "_hash_forward")),
    ("HTTP (aiohttp)", ("aiohttp",)),
    ("event loop and sockets", ("asyncio", "selectors", "socket")),
    ("index (SQLite)", ("sqlite", "daemon/util/db.py", "daemon/store/index")),
)
"""How a sampled stack's top frame is classed, first match wins (substrings of py-spy's
`function (file:line)` frames); the rest is 'other'."""
IDLE = ("_worker (concurrent/futures/thread.py", ".select (selectors.py", ".wait (threading.py")
"""Top frames of a thread that waits (an executor thread on its queue, the loop in epoll):
py-spy samples them as running, since they wait in C; they are left out."""


def measure(runs: int, sizes: list[int], profile: str = "loopback") -> dict[str, Any]:
    wanted = spec(sizes)
    files = wanted["repos"][REPO]
    total = sum(size for size, _seed in files.values())
    with link(profile) as wan, peers(wanted, wan) as servers:
        urls = [f"{servers['hub']}/{REPO}/resolve/main/{path}" for path in files]
        config = {"huggingface": {"endpoint": servers["hub"]}, "store": {"min_free": "0"}}
        with daemon(config) as cache:
            assert cache.process is not None
            pid = cache.process.pid
            cpu: dict[str, list[float]] = {"daemon": [], "curl + sha256sum": []}

            def ours() -> float:
                before = process_cpu_seconds(pid)
                elapsed = _cold(cache.client())
                cpu["daemon"].append(process_cpu_seconds(pid) - before)
                return elapsed

            def c_tools() -> float:
                before = _children_cpu()
                elapsed = tools.parallel_curl_sha256sum(urls)
                cpu["curl + sha256sum"].append(_children_cpu() - before)
                return elapsed

            times = interleave(runs, {"daemon": ours, "curl + sha256sum": c_tools})
            profile_summary = _profiled(pid, lambda: _cold(cache.client()))
    per_gib = {
        name: round(sorted(values)[len(values) // 2] / (total / GiB), 2)
        for name, values in cpu.items()
    }
    return {
        "profile": profile,
        "bytes": total,
        "core_seconds_per_gib": per_gib,
        "daemon_over_c_tools": round(per_gib["daemon"] / per_gib["curl + sha256sum"], 2),
        "seconds": {name: round(sorted(v)[len(v) // 2], 3) for name, v in times.items()},
        "where_the_daemon_spends": profile_summary,
    }


def _cold(client: Any) -> float:
    started = time.perf_counter()
    entry = client.request(
        "POST",
        "/v1/resources",
        body={"type": "HF", "repo": REPO},
        params={"wait": True},
        timeout=3600,
    )
    elapsed = time.perf_counter() - started
    assert entry["state"] == "ready", entry
    client.request("DELETE", f"/v1/resources/{entry['id']}")
    client.request("POST", "/v1/gc")
    return elapsed


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _profiled(pid: int, fetch: Any) -> dict[str, Any]:
    """py-spy on the daemon for one cold fetch: shares by top frame and by kind of work."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return {"skipped": "py-spy is not in the venv (bench/run installs it)"}
    out = Path(tempfile.mkdtemp(dir=scratch())) / "profile.txt"
    command = [str(spy), "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
    recorder = subprocess.Popen(
        [*command, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    time.sleep(1.0)  # py-spy attaches
    fetch()
    recorder.send_signal(signal.SIGINT)
    _, errors = recorder.communicate(timeout=60)
    if not out.exists():
        return {"skipped": f"py-spy failed: {errors.decode(errors='replace')[-300:]}"}
    return summarize(out.read_text())


def summarize(raw: str) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks (`frame;frame;...;top count` a line), less idle ones."""
    leaves: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        top = stack.rsplit(";", 1)[-1]
        if any(mark in top for mark in IDLE):
            continue
        leaves[top] += int(count)
        kinds[_kind(stack.split(";")[-3:])] += int(count)
    samples = sum(leaves.values()) or 1
    return {
        "samples": samples,
        "by_kind": {k: round(n / samples, 3) for k, n in kinds.most_common()},
        "top_frames": {f: round(n / samples, 3) for f, n in leaves.most_common(12)},
    }


def _kind(frames: list[str]) -> str:
    """The kind of work of a stack, from its top frames (the innermost first)."""
    for frame in reversed(frames):
        for kind, marks in KINDS:
            if any(mark in frame for mark in marks):
                return kind
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="100,400,1000", help="LFS file sizes in MiB")
    parser.add_argument("--profile", default="loopback")
    args = parser.parse_args()
    result = measure(args.runs, [int(s) for s in args.sizes.split(",")], args.profile)
    print(json.dumps(result, indent=2))
    print(f"saved to {save('cpu', result)}")


if __name__ == "__main__":
    main()
