"""Peak resident memory of the daemon (issue 9, measurement 6): target under 200 MiB.

Two fetches, each by a fresh daemon, peak RSS read from /proc (VmHWM): one 4 GiB file (made
on the fly by the fake hub), and a repo of 10,000 small files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import daemon, peers

MB = 1024 * 1024


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM")


def measure(big_gib: int = 4, small_files: int = 10_000) -> dict[str, Any]:
    files = {
        f"tokens/{i // 500:03}/t{i:05}.json": [200 + i % 500, 10 + i] for i in range(small_files)
    }
    spec = {
        "repos": {"bench/big": {"w.safetensors": [big_gib * 1024 * MB, 9]}, "bench/many": files}
    }
    out: dict[str, Any] = {}
    with peers(spec) as servers:
        for name, repo in (("one_file_gib", "bench/big"), ("small_files", "bench/many")):
            config = {"huggingface": {"endpoint": servers["hub"]}, "store": {"min_free": "0"}}
            with daemon(config) as cache:
                assert cache.process is not None
                idle = _peak_mib(cache.process.pid)
                entry = cache.client().request(
                    "POST",
                    "/v1/resources",
                    body={"type": "HF", "repo": repo},
                    params={"wait": True},
                    timeout=3600,
                )
                assert entry["state"] == "ready", entry
                out[name] = {
                    "size": big_gib if name == "one_file_gib" else small_files,
                    "idle_rss_mib": idle,
                    "peak_rss_mib": _peak_mib(cache.process.pid),
                    "bytes": entry["size_bytes"],
                }
    return out
