"""What every benchmark needs: the peers in a child process, the daemon, timing, reports."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.daemon_process import DaemonProcess

ROOT = Path(__file__).resolve().parents[1]


class Wan:
    """A running link process (bench/link.py): a listener per upstream, by name."""

    NAMES = ("hub", "cdn", "static", "registry")

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.link", profile, *self.NAMES],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        assert self._process.stdin is not None
        self._stdin, self._stdout = self._process.stdin, self._process.stdout
        self.urls: dict[str, str] = json.loads(self._stdout.readline())

    def forward(self, targets: dict[str, str]) -> None:
        """Point listeners (by name) at their upstreams' real URLs."""
        addresses = {name: url.split("://", 1)[-1].rstrip("/") for name, url in targets.items()}
        self._stdin.write(json.dumps(addresses) + "\n")
        self._stdin.flush()

    def stats(self) -> dict[str, Any]:
        """What each listener carried so far (connections, bytes each way), and since the last
        call the connections used and the seconds from first byte to last."""
        self._stdin.write("stats\n")
        self._stdin.flush()
        return dict(json.loads(self._stdout.readline()))

    def close(self) -> None:
        self._stdin.close()
        self._process.wait(timeout=30)


@contextmanager
def link(profile: str) -> Iterator[Wan | None]:
    """The link of `profile` (None on loopback, where the tools reach the peers directly)."""
    if profile == "loopback":
        yield None
        return
    wan = Wan(profile)
    try:
        yield wan
    finally:
        wan.close()


@contextmanager
def peers(spec: dict[str, Any], wan: Wan | None = None) -> Iterator[dict[str, Any]]:
    """Start bench/servers.py with `spec`; yield what it printed (URLs, digests). Through a
    link, the hub, its content host and the S3 host are its listeners (the hub's LFS
    redirects too), and `direct` keeps the servers' own URLs."""
    if wan is not None:
        spec = spec | {"public_cdn": wan.urls["cdn"]}
    spec_file = Path(tempfile.mkdtemp(dir=scratch())) / "spec.json"
    spec_file.write_text(json.dumps(spec))  # a file: 10,000 paths do not fit in argv
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.servers", str(spec_file)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        servers = json.loads(process.stdout.readline())
        if wan is not None:
            direct = {"hub": servers["hub"], "cdn": servers["cdn"], "static": servers["static"]}
            wan.forward(direct)
            servers |= {name: wan.urls[name] for name in direct} | {"direct": direct}
        yield servers
    finally:
        process.stdin.close()
        process.wait(timeout=30)
        shutil.rmtree(spec_file.parent, ignore_errors=True)


@contextmanager
def daemon(
    config: dict[str, dict[str, Any]], env: dict[str, str] | None = None
) -> Iterator[DaemonProcess]:
    root = Path(tempfile.mkdtemp(prefix="bench-daemon-", dir=scratch()))
    process = DaemonProcess(root, config, env=env)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)


def scratch() -> str:
    """Benchmarks write gigabytes: keep them on the disk the store would use, not tmpfs."""
    path = os.environ.get("BENCH_SCRATCH", "/var/tmp")
    os.makedirs(path, exist_ok=True)
    return path


def timed_python(code: str, env: dict[str, str] | None = None) -> float:
    """Run `code` in a fresh interpreter; it prints its own elapsed seconds on its last line."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
        "runs": len(samples),
    }


def interleave(runs: int, contenders: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Each contender once per round, rounds repeated: noise hits them all alike. Every run
    starts from a clean page cache (dirty pages written back, untimed): otherwise a tool that
    leaves gigabytes unwritten hands the cost of writing them to whoever runs next."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, run in contenders.items():
            os.sync()
            samples[name].append(run())
    return samples


def disk_write_speed(total_bytes: int, runs: int = 3) -> float:
    """Sequential write with fsync (dd), bytes per second, median of `runs`: the disk's limit."""
    speeds = sorted(_dd_speed(total_bytes) for _ in range(runs))
    return speeds[len(speeds) // 2]


def _dd_speed(total_bytes: int) -> float:
    os.sync()
    target = Path(tempfile.mkdtemp(dir=scratch())) / "dd.bin"
    count = max(1, total_bytes // (1024 * 1024))
    started = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={count}", "conv=fsync"],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(target.parent, ignore_errors=True)
    return count * 1024 * 1024 / elapsed


def parallel_curl(urls: list[str]) -> float:
    """Seconds for curl to fetch every URL at once into /dev/null: the network's limit."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(["curl", "-s", "-f", "-L", "-o", "/dev/null", url]) for url in urls
    ]
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"curl failed: {process.args!r}")
    return time.perf_counter() - started


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU of a running process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
    }


def save(name: str, report: dict[str, Any]) -> Path:
    day = time.strftime("%Y-%m-%d")
    path = ROOT / "bench" / "results" / f"{day}-{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
