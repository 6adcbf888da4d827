"""A job container that downloads its own model (issue 17), side by side in one run:

    python -m bench.hub [--runs 3] [--sizes 500,500,500] [--profile loopback|cdn|far]

- upstream: the container downloads straight from the hub (`docker run --network host` with
  `HF_ENDPOINT` at the fake hub: what happens today, without the daemon);
- daemon cold: a daemon job whose container gets the injected `HF_ENDPOINT` (the daemon's
  containers' listener), the daemon's store emptied first;
- daemon warm: the same job again (a second job on the same host).

The container runs huggingface_hub itself (bench/hub_image.py: the host's Python in a busybox
image) and measures from inside: the time to the first 64 KiB of the largest file (a GET, in a
container of its own, from an emptied store when cold), and the time for `snapshot_download`
of the whole repo. Upstream bytes are counted by the hub and its content host. Contenders are
interleaved round by round (bench/common.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import daemon, link, machine, peers, save, summary
from bench.hub_image import build
from tests.daemon_process import DaemonProcess
from tests.peers.dockerd import DockerPeer
from tests.peers.images import publish
from tests.peers.registry import RegistryPeer

MB = 1024 * 1024
REPO = "bench/hub-model"
IMAGE = "nosana/hf-client:bench"


def spec(sizes: list[int]) -> dict[str, Any]:
    files = {
        f"model-{i + 1:05}-of-{len(sizes):05}.safetensors": [s * MB, 3000 + i]
        for i, s in enumerate(sizes)
    }
    files |= {"config.json": [2048, 3100], "tokenizer.json": [2 * MB, 3101]}
    return {"repos": {REPO: files}}


class Bench:
    """The engine, the peers and the daemon of one run, and one measurement of each kind."""

    def __init__(self, engine: DockerPeer, servers: dict[str, Any], cache: DaemonProcess) -> None:
        self.engine = engine
        self.servers = servers
        self.cache = cache
        files = spec_files(servers)
        self.largest = max(files, key=lambda path: files[path])

    def upstream_bytes(self) -> int:
        with urllib.request.urlopen(self.servers["traffic"], timeout=30) as response:
            sent = json.loads(response.read())
        return int(sent["hub"]) + int(sent["cdn"])

    def direct(self, *args: str) -> dict[str, Any]:
        """The client in a container on the host's network, straight at the hub."""
        command = [
            "docker",
            "-H",
            self.engine.host,
            "run",
            "--rm",
            "--network",
            "host",
            "-e",
            f"HF_ENDPOINT={self.servers['hub']}",
            IMAGE,
            *args,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=3600)
        answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return answer

    def job(self, *args: str) -> dict[str, Any]:
        """The client in a daemon job's container, with the HF_ENDPOINT the daemon gives it."""
        op = {"type": "container/run", "id": "hf", "args": {"image": IMAGE, "cmd": list(args)}}
        definition = {"version": "0.1", "type": "container", "ops": [op]}
        api = self.cache.client()
        record = api.request(
            "POST", "/v1/jobs", body=definition, params={"wait": True}, timeout=3600
        )
        assert record["state"] == "completed", record
        answer: dict[str, Any] = json.loads(
            self.cache.job_logs(record["id"]).strip().splitlines()[-1]
        )
        return answer

    def empty_store(self) -> None:
        """Delete what came through /hf, once downloads a probe started (they go on when the
        client leaves) have ended."""
        api = self.cache.client()
        while True:
            ours = [
                e for e in api.get("/v1/resources")["resources"] if e["details"].get("via") == "/hf"
            ]
            if all(e["state"] not in ("pending", "downloading") for e in ours):
                break
            time.sleep(0.2)
        for entry in ours:
            api.request("DELETE", f"/v1/resources/{entry['id']}")
        api.request("POST", "/v1/gc")

    def round(self, contender: str) -> dict[str, float]:
        """One measurement: time to first byte, time to the whole repo, upstream bytes."""
        run = self.direct if contender == "upstream" else self.job
        if contender == "daemon cold":
            self.empty_store()
        ttfb = run("ttfb", REPO, self.largest)["ttfb_s"]
        if contender == "daemon cold":
            self.empty_store()
        before = self.upstream_bytes()
        whole = run("snapshot", REPO)
        return {
            "ttfb_s": ttfb,
            "seconds": whole["seconds"],
            "upstream_bytes": self.upstream_bytes() - before,
        }


def spec_files(servers: dict[str, Any]) -> dict[str, int]:
    return {path: int(size) for path, size in servers["sizes"].items()}


def measure(runs: int, sizes: list[int], profile: str = "loopback") -> dict[str, Any]:
    if shutil.which("docker") is None:
        raise SystemExit("the docker CLI is needed (apt-get install docker.io)")
    registry = RegistryPeer(Path(tempfile.mkdtemp(prefix="bench-registry-"))).start()
    engine = DockerPeer(mirror=registry.url).start()
    try:
        client = engine.client()
        publish(client, registry.host)
        build(client, f"{registry.host}/{IMAGE}")
        client.images.push(f"{registry.host}/nosana/hf-client", tag="bench")
        client.close()
        wanted = spec(sizes)
        with link(profile) as wan, peers(wanted, wan) as servers:  # the hub behind the link
            servers["sizes"] = {path: size for path, (size, _seed) in wanted["repos"][REPO].items()}
            config = {
                "docker": {"host": engine.host, "gpu": "none"},
                "huggingface": {"endpoint": servers["hub"], "mirror_port": 0},
                "store": {"min_free": "0"},
            }
            with daemon(config) as cache:
                bench = Bench(engine, servers, cache)
                bench.direct("ttfb", REPO, "config.json")  # the engine pulls the image once
                samples = _interleave(runs, bench)
    finally:
        engine.stop()
        registry.stop()
    total = sum(size for size, _seed in wanted["repos"][REPO].values())
    return _report(samples, total, sizes) | {"profile": profile}


def _interleave(runs: int, bench: Bench) -> dict[str, list[dict[str, float]]]:
    contenders = ["upstream", "daemon cold", "daemon warm"]
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name in contenders:
            subprocess.run(["sync"], check=True)
            samples[name].append(bench.round(name))
    return samples


def _report(
    samples: dict[str, list[dict[str, float]]], total: int, sizes: list[int]
) -> dict[str, Any]:
    def pick(name: str, key: str) -> list[float]:
        return [sample[key] for sample in samples[name]]

    times = {name: summary(pick(name, "seconds")) for name in samples}
    first = {name: summary(pick(name, "ttfb_s")) for name in samples}
    upstream = {name: int(max(pick(name, "upstream_bytes"))) for name in samples}
    return {
        "machine": machine(),
        "files_mib": sizes,
        "bytes": total,
        "times": times,
        "time_to_first_byte": first,
        "upstream_bytes": upstream,
        "cold_over_upstream": round(
            times["daemon cold"]["median_s"] / times["upstream"]["median_s"], 2
        ),
        "warm_speedup": round(times["upstream"]["median_s"] / times["daemon warm"]["median_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="500,500,500", help="LFS shard sizes in MiB")
    parser.add_argument("--profile", default="loopback", help="the hub's link (cdn, far)")
    args = parser.parse_args()
    result = measure(args.runs, [int(s) for s in args.sizes.split(",")], args.profile)
    print(json.dumps(result, indent=2))
    print(f"saved to {save('hub', result)}")


if __name__ == "__main__":
    main()
