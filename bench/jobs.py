"""Warm job start (issue 6): everything cached, from submit to container exit.

    python -m bench.jobs [--runs 10]

Side by side, on the same engine, in one run:
- the daemon: `POST /v1/jobs?wait=true` of a job whose image and HF resource are cached;
- plain `docker run --rm` of the same container with the same read-only bind mount;
- Nosana's node on a cache hit, emulated: it re-syncs every resource with the remote before
  each job, so a listing of the repo (huggingface_hub) precedes the same `docker run`.
Target: the daemon within 1.2x of plain `docker run`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import daemon, interleave, machine, peers, save, summary
from tests.peers.dockerd import DockerPeer
from tests.peers.images import publish
from tests.peers.registry import RegistryPeer

REPO = "bench/warm"
IMAGE = "nosana/multi:1.0"
MB = 1024 * 1024

RESYNC = """
import time
from huggingface_hub import HfApi
started = time.perf_counter()
list(HfApi(endpoint={endpoint!r}).list_repo_tree({repo!r}, recursive=True))
print(time.perf_counter() - started)
"""


def job(resource_target: str = "/m") -> dict[str, Any]:
    return {
        "version": "0.1",
        "type": "container",
        "ops": [
            {
                "type": "container/run",
                "id": "warm",
                "args": {
                    "image": IMAGE,
                    "cmd": ["ls", resource_target],
                    "resources": [{"type": "HF", "repo": REPO, "target": resource_target}],
                },
            }
        ],
    }


def measure(runs: int) -> dict[str, Any]:
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise SystemExit("the docker CLI is needed (apt-get install docker.io)")
    registry = RegistryPeer(Path(tempfile.mkdtemp(prefix="bench-registry-"))).start()
    engine = DockerPeer(mirror=registry.url).start()
    try:
        client = engine.client()
        publish(client, registry.host)
        spec = {"repos": {REPO: {"model.safetensors": [8 * MB, 7], "config.json": [512, 8]}}}
        with peers(spec) as servers:
            config = {
                "docker": {"host": engine.host, "gpu": "none"},
                "huggingface": {"endpoint": servers["hub"]},
                "store": {"min_free": "0"},
            }
            with daemon(config) as cache:
                api = cache.client()
                first = api.request(
                    "POST", "/v1/jobs", body=job(), params={"wait": True}, timeout=600
                )
                assert first["state"] == "completed", first
                view = first["ops"][0]["resources"][0]["path"]
                docker_run = [
                    docker_cli,
                    "-H",
                    engine.host,
                    "run",
                    "--rm",
                    "-v",
                    f"{view}:/m:ro",
                    IMAGE,
                    "ls",
                    "/m",
                ]

                def daemon_job() -> float:
                    started = time.perf_counter()
                    record = api.request("POST", "/v1/jobs", body=job(), params={"wait": True})
                    elapsed = time.perf_counter() - started
                    assert record["state"] == "completed", record
                    assert record["ops"][0]["cache"]["misses"] == 0
                    return elapsed

                def plain_docker_run() -> float:
                    started = time.perf_counter()
                    subprocess.run(docker_run, check=True, capture_output=True)
                    return time.perf_counter() - started

                def resync_then_run() -> float:
                    code = RESYNC.format(endpoint=servers["hub"], repo=REPO)
                    listing = subprocess.run(
                        [sys.executable, "-c", code], capture_output=True, text=True, check=True
                    )
                    return float(listing.stdout.split()[-1]) + plain_docker_run()

                samples = interleave(
                    runs,
                    {
                        "daemon (POST /v1/jobs?wait=true)": daemon_job,
                        "plain docker run": plain_docker_run,
                        "re-sync on hit + docker run (Nosana's node)": resync_then_run,
                    },
                )
        client.close()
    finally:
        engine.stop()
        registry.stop()
    times = {name: summary(values) for name, values in samples.items()}
    ours = times["daemon (POST /v1/jobs?wait=true)"]["median_s"]
    return {
        "machine": machine(),
        "times": times,
        "daemon_over_docker_run": round(ours / times["plain docker run"]["median_s"], 2),
        "speedup_vs_resync_on_hit": round(
            times["re-sync on hit + docker run (Nosana's node)"]["median_s"] / ours, 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    result = measure(args.runs)
    print(json.dumps(result, indent=2))
    print(f"saved to {save('jobs', result)}")


if __name__ == "__main__":
    main()
