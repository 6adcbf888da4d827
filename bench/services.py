"""Time-to-ready of a service job (issue 16): from submit until its endpoint answers.

    python -m bench.services [--runs 5] [--sizes 64,256]

The service: a busybox image that reads its model files (an HF repo mounted read-only at /m)
and then serves HTTP; the job's health check asks `GET /health` for 200. Side by side, one
run of each per round (`interleave`):
- cold, the daemon: nothing on the host (image and model); `POST /v1/jobs`, then the job's
  record read until its op is ready (the daemon's own health checks decided);
- cold, by hand, as Nosana's node fetches: `snapshot_download` with one worker, then
  `docker run -p` (which pulls the image) and the port polled until `/health` answers 200;
- warm, the daemon: image and model cached;
- warm, plain `docker run`: the image in the engine, the same files bind-mounted read-only,
  the port polled until it answers.
Both sides look every `POLL` seconds: the daemon's record, or the port. Each service is
removed once it answered (not timed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.cold import _forget_everything, engine
from bench.common import daemon, interleave, machine, peers, save, scratch, summary
from tests.daemon_process import DaemonProcess
from tests.peers.dockerd import DockerPeer

MB = 1024 * 1024
IMAGE = "nosana/multi:1.0"
REPO = "bench/service"
POLL = 0.05
SERVE = (
    "cat /m/*.safetensors > /dev/null && mkdir -p /www && echo ok > /www/health"
    " && exec httpd -f -p 8080 -h /www"
)
DOWNLOAD = """
import time
from huggingface_hub import snapshot_download
started = time.perf_counter()
snapshot_download({repo!r}, endpoint={hub!r}, local_dir={target!r}, max_workers=1)
print(time.perf_counter() - started)
"""
COLD_DAEMON = "daemon, cold (submit until ready)"
COLD_HAND = "snapshot_download (1 stream) + docker run + polling, cold"
WARM_DAEMON = "daemon, warm (submit until ready)"
WARM_HAND = "docker run + polling the port, warm"


def job() -> dict[str, Any]:
    check = {"type": "http", "path": "/health", "method": "GET", "expected_status": 200}
    return {
        "version": "0.1",
        "type": "container",
        "ops": [
            {
                "type": "container/run",
                "id": "service",
                "args": {
                    "image": IMAGE,
                    "cmd": SERVE,
                    "resources": [{"type": "HF", "repo": REPO, "target": "/m"}],
                    "expose": [
                        {
                            "port": 8080,
                            "type": "api",
                            "health_checks": [{**check, "continuous": False}],
                        }
                    ],
                },
            }
        ],
    }


def measure(runs: int, sizes: list[int]) -> dict[str, Any]:
    files = {f"model-{i:05}.safetensors": [s * MB, 6000 + i] for i, s in enumerate(sizes)}
    spec = {"repos": {REPO: files | {"config.json": [2048, 1]}}}
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise SystemExit("the docker CLI is needed (apt-get install docker.io)")
    local = Path(tempfile.mkdtemp(prefix="bench-service-", dir=scratch()))
    reported: dict[str, list[float]] = {COLD_DAEMON: [], WARM_DAEMON: []}
    try:
        with engine() as peer, peers(spec) as servers:
            config = {
                "docker": {"host": peer.host, "gpu": "none"},
                "huggingface": {"endpoint": servers["hub"]},
                "store": {"min_free": "0"},
            }
            by_hand = _ByHand(docker_cli, peer, servers["hub"], local)
            with daemon(config) as cache:
                ours = _Ours(cache, reported)
                by_hand.download(local / "warm")  # the warm run's files, fetched once

                def cold_daemon() -> float:
                    _forget_everything(cache, peer)
                    return ours.until_ready(COLD_DAEMON)

                def cold_by_hand() -> float:
                    _forget_everything(cache, peer)
                    return by_hand.cold()

                def warm_daemon() -> float:
                    ours.until_ready()  # cached, whatever ran before
                    return ours.until_ready(WARM_DAEMON)

                def warm_by_hand() -> float:
                    pull = _docker(docker_cli, peer, "pull", IMAGE)
                    subprocess.run(pull, check=True, capture_output=True)
                    return by_hand.serve(local / "warm")

                contenders: dict[str, Callable[[], float]] = {
                    COLD_DAEMON: cold_daemon,
                    COLD_HAND: cold_by_hand,
                    WARM_DAEMON: warm_daemon,
                    WARM_HAND: warm_by_hand,
                }
                samples = interleave(runs, contenders)
    finally:
        shutil.rmtree(local, ignore_errors=True)
    times = {name: summary(values) for name, values in samples.items()}
    return {
        "machine": machine(),
        "files_mib": sizes,
        "poll_seconds": POLL,
        "times": times,
        "cold_speedup": round(times[COLD_HAND]["median_s"] / times[COLD_DAEMON]["median_s"], 2),
        "warm_ratio_to_docker_run": round(
            times[WARM_DAEMON]["median_s"] / times[WARM_HAND]["median_s"], 2
        ),
        "daemon_reported_ready_seconds": {name: summary(v) for name, v in reported.items()},
    }


class _Ours:
    """A service job through the daemon: submitted, watched until ready, stopped."""

    def __init__(self, cache: DaemonProcess, reported: dict[str, list[float]]) -> None:
        self.api = cache.client()
        self.reported = reported
        """The op's own `ready_seconds` (from its start, as the daemon saw it), by contender."""

    def until_ready(self, contender: str | None = None) -> float:
        started = time.perf_counter()
        record = self.api.request("POST", "/v1/jobs", body=job())
        while True:
            shown = self.api.get(f"/v1/jobs/{record['id']}")
            op = shown["ops"][0]
            if op["ready_at"] is not None:
                elapsed = time.perf_counter() - started
                break
            assert shown["state"] not in ("failed", "completed", "stopped"), shown
            time.sleep(POLL)
        if contender is not None:
            self.reported[contender].append(op["timings"]["ready_seconds"])
        self.api.request("POST", f"/v1/jobs/{record['id']}/stop")
        return elapsed


class _ByHand:
    """The same service without the daemon: files downloaded, `docker run`, the port polled."""

    def __init__(self, docker_cli: str, peer: DockerPeer, hub: str, local: Path) -> None:
        self.docker_cli = docker_cli
        self.peer = peer
        self.hub = hub
        self.local = local

    def download(self, target: Path) -> float:
        code = DOWNLOAD.format(repo=REPO, hub=self.hub, target=str(target))
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
        return float(out.split()[-1])

    def cold(self) -> float:
        target = Path(tempfile.mkdtemp(dir=self.local))
        try:
            started = time.perf_counter()
            self.download(target)
            self.serve(target, started=started)
            return time.perf_counter() - started
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def serve(self, files: Path, started: float | None = None) -> float:
        """`docker run` the service on `files` and poll until it answers; seconds taken."""
        started = time.perf_counter() if started is None else started
        run = _docker(
            self.docker_cli,
            self.peer,
            *("run", "-d", "-p", "127.0.0.1::8080", "-v", f"{files}:/m:ro", IMAGE),
            *("sh", "-c", SERVE),
        )
        container = subprocess.run(run, check=True, capture_output=True, text=True).stdout.strip()
        try:
            port = subprocess.run(
                _docker(self.docker_cli, self.peer, "port", container, "8080/tcp"),
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[0]
            _poll(f"http://{port}/health")
            return time.perf_counter() - started
        finally:
            subprocess.run(
                _docker(self.docker_cli, self.peer, "rm", "-f", container), capture_output=True
            )


def _poll(url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer in {timeout}s")
        time.sleep(POLL)


def _docker(docker_cli: str, peer: DockerPeer, *args: str) -> list[str]:
    return [docker_cli, "-H", peer.host, *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="64,256", help="MiB of each model file")
    args = parser.parse_args()
    result = measure(args.runs, [int(s) for s in args.sizes.split(",")])
    print(json.dumps(result, indent=2))
    print(f"saved to {save('services', result)}")


if __name__ == "__main__":
    main()
