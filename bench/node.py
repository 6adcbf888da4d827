"""A job as Nosana's node runs it (issue 28): a helper container per resource, one after
another, then the job container, cold and hot, straight on the engine and through the
daemon's engine socket (`node.socket`).

    python -m bench.node [--runs 5] [--sizes 50,200] [--quick]

Both contenders make the node's own calls with the node's own client (dockerode, through
tests/peers/nosana_node.mjs: helper pull, volume create, create, start, logs followed, wait,
remove, volume inspect; then the job container with both volumes mounted read-only at their
targets), on the same private dockerd, for one HF repo and one S3 prefix:

- **straight on the engine** (Nosana's way): the real helper image cannot be pulled here (no
  internet), so a stand-in of it (the bench image with `ENTRYPOINT ["true"]`, tagged as
  `nosana/resource-manager:v1.1.19`) is run as the node runs it, and its work is done beside
  it as the helper does it, one file after another, single stream (huggingface_hub with one
  worker, boto3 with one stream: bench/cold.py's "Nosana's node" contender) into the volume's
  mountpoint. Hot, the node keeps its volumes and the helper re-syncs them: the same container,
  and a listing of the repo and of the prefix (the least a re-sync asks the remote).
- **through the socket**: the daemon plays the helper; cold, its store emptied first (the
  parallel verified fetch); hot, from the store into a fresh volume (hard links: the store is
  inside the engine's data-root).

Contenders are interleaved, each run starting from a clean page cache; medians are reported.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker

from bench.cold import engine
from bench.common import daemon, interleave, machine, peers, save, summary
from tests.daemon_process import DaemonProcess
from tests.peers.dockerd import DockerPeer
from tests.peers.nosana_node import node_call

MB = 1024 * 1024
IMAGE = "nosana/multi:1.0"
HELPER = "registry.hub.docker.com/nosana/resource-manager:v1.1.19"
REPO = "bench/node"
BUCKET = "bench"
PREFIX = "node/sd"
NETWORK = {"subnet": "10.231.19.0/24", "gateway": "10.231.19.1"}
STRAIGHT_COLD = "straight on the engine, Nosana's helper fetch (cold)"
STRAIGHT_HOT = "straight on the engine, the helper's re-sync (hot)"
SOCKET_COLD = "through the engine socket (cold)"
SOCKET_HOT = "through the engine socket (hot)"

HELPER_WORK = """
import os, sys, time
started = time.perf_counter()
hf_volume, s3_volume, hot = sys.argv[1], sys.argv[2], sys.argv[3] == "hot"
from huggingface_hub import HfApi, snapshot_download
import boto3
from botocore import UNSIGNED
from botocore.config import Config
from boto3.s3.transfer import TransferConfig
if hot:
    list(HfApi(endpoint={hub!r}).list_repo_tree({repo!r}, recursive=True))
else:
    snapshot_download({repo!r}, endpoint={hub!r}, local_dir=hf_volume, max_workers=1)
config = Config(signature_version=UNSIGNED, s3={{"addressing_style": "path"}})
client = boto3.client("s3", endpoint_url={static!r}, region_name="us-east-1", config=config)
single = TransferConfig(use_threads=False, max_concurrency=1)
for page in client.get_paginator("list_objects_v2").paginate(Bucket={bucket!r}, Prefix={prefix!r}):
    for item in page.get("Contents", []) if not hot else []:
        path = os.path.join(s3_volume, os.path.relpath(item["Key"], {prefix!r}))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        client.download_file({bucket!r}, item["Key"], path, Config=single)
print(time.perf_counter() - started)
"""


def spec(sizes: list[int]) -> dict[str, Any]:
    files = {f"model-{i:05}.safetensors": [s * MB, 5000 + i] for i, s in enumerate(sizes)}
    objects = {f"{PREFIX}/unet/part-{i}.bin": [s * MB, 6000 + i] for i, s in enumerate(sizes)}
    return {
        "repos": {REPO: files | {"config.json": [2048, 1]}},
        "bucket": BUCKET,
        "objects": objects | {f"{PREFIX}/model_index.json": [1024, 2]},
    }


def _prepare(peer: DockerPeer) -> None:
    """The job's image pulled (it is not what is measured), and the helper's stand-in."""
    client = peer.client()
    try:
        client.images.pull(IMAGE)
        dockerfile = io.BytesIO(f'FROM {IMAGE}\nENTRYPOINT ["true"]\n'.encode())
        client.images.build(fileobj=dockerfile, tag=HELPER, rm=True)
    finally:
        client.close()


def _helper(socket: Path, cmd: list[str], volume: str | None = None) -> dict[str, Any]:
    result = node_call(socket, "helper", {"cmd": cmd, **({"volume": volume} if volume else {})})
    assert result.get("exit") == 0, result
    return result


def _job(socket: Path, volumes: dict[str, str]) -> None:
    args = {
        "image": IMAGE,
        "name": f"bench-node-{uuid.uuid4().hex[:8]}",
        "cmd": ["ls", "/models/hf", "/models/s3"],
        "volumes": [
            {"dest": dest, "name": name, "readonly": True} for dest, name in volumes.items()
        ],
        **NETWORK,
    }
    result = node_call(socket, "job", args)
    assert result.get("exit") == 0, result


class Contenders:
    """The four runs of a round, in order: the straight hot run re-syncs the volumes its cold
    run filled, as the node does; the socket's runs fill fresh volumes every time."""

    def __init__(self, peer: DockerPeer, cache: DaemonProcess, socket: Path, servers: Any):
        self.peer, self.cache, self.socket = peer, cache, socket
        self.hf_cmd = ["HF", REPO, "", ""]
        self.s3_cmd = ["S3", f"s3://{BUCKET}/{PREFIX}", ""]
        self.work = HELPER_WORK.format(
            hub=servers["hub"], static=servers["static"], repo=REPO, bucket=BUCKET, prefix=PREFIX
        )
        self.kept: dict[str, str] = {}

    def all(self) -> dict[str, Callable[[], float]]:
        return {
            STRAIGHT_COLD: lambda: self.straight(hot=False),
            STRAIGHT_HOT: lambda: self.straight(hot=True),
            SOCKET_COLD: lambda: self.through_socket(hot=False),
            SOCKET_HOT: lambda: self.through_socket(hot=True),
        }

    def straight(self, *, hot: bool) -> float:
        engine_socket, mode = self.peer.socket, "hot" if hot else "cold"
        if not hot:
            self._remove_volumes()
        started = time.perf_counter()
        hf = _helper(engine_socket, self.hf_cmd, self.kept.get("hf"))
        s3 = _helper(engine_socket, self.s3_cmd, self.kept.get("s3"))
        subprocess.run(
            [
                sys.executable,
                "-c",
                self.work,
                hf["mountpoint"],
                s3["mountpoint"],
                mode,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "HF_HUB_DISABLE_XET": "1"},
        )
        self.kept = {"hf": hf["volumeName"], "s3": s3["volumeName"]}
        _job(engine_socket, {"/models/hf": self.kept["hf"], "/models/s3": self.kept["s3"]})
        return time.perf_counter() - started

    def through_socket(self, *, hot: bool) -> float:
        if not hot:
            self._forget()
        started = time.perf_counter()
        hf = _helper(self.socket, self.hf_cmd)
        s3 = _helper(self.socket, self.s3_cmd)
        _job(self.socket, {"/models/hf": hf["volumeName"], "/models/s3": s3["volumeName"]})
        elapsed = time.perf_counter() - started
        outcomes = [r["outcome"] for r in self.cache.client().get("/v1/status")["node"]["recent"]]
        assert outcomes[:2] == (["hit", "hit"] if hot else ["miss", "miss"]), outcomes
        self._remove(hf["volumeName"], s3["volumeName"])
        return elapsed

    def _forget(self) -> None:
        client = self.cache.client()
        for entry in client.get("/v1/resources")["resources"]:
            client.request("DELETE", f"/v1/resources/{entry['id']}")
        client.request("POST", "/v1/gc")

    def _remove_volumes(self) -> None:
        self._remove(*self.kept.values())
        self.kept = {}

    def _remove(self, *names: str) -> None:
        client = docker.DockerClient(base_url=self.peer.host, version="auto")
        try:
            for name in names:
                client.api.remove_volume(name, force=True)
        finally:
            client.close()


def measure(runs: int, sizes: list[int]) -> dict[str, Any]:
    with engine() as peer, peers(spec(sizes)) as servers:
        _prepare(peer)
        socket = Path(f"/tmp/ncb-{os.getpid()}.sock")
        config = {
            "docker": {"host": peer.host, "gpu": "none"},
            "huggingface": {"endpoint": servers["hub"], "mirror_port": 0},
            "s3": {"endpoint_url": servers["static"]},
            # Inside dockerd's data-root, its own mount: the volumes get hard links (README).
            "store": {"min_free": "0", "path": str(peer.root / "data" / "nosana-cache")},
            "node": {"socket": str(socket)},
        }
        with daemon(config) as cache:
            samples = interleave(runs, Contenders(peer, cache, socket, servers).all())
    times = {name: summary(values) for name, values in samples.items()}

    def ratio(theirs: str, ours: str) -> float:
        return round(times[theirs]["median_s"] / times[ours]["median_s"], 2)

    return {
        "machine": machine(),
        "files_mib": sizes,
        "times": times,
        "speedup_cold": ratio(STRAIGHT_COLD, SOCKET_COLD),
        "speedup_hot": ratio(STRAIGHT_HOT, SOCKET_HOT),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="50,200", help="MiB of each file (per resource)")
    parser.add_argument("--quick", action="store_true", help="3 runs of 8 and 32 MiB files")
    args = parser.parse_args()
    runs, sizes = args.runs, [int(s) for s in args.sizes.split(",")]
    if args.quick:
        runs, sizes = 3, [8, 32]
    result = measure(runs, sizes)
    print(json.dumps(result, indent=2))
    print(f"saved to {save('node', result)}")


if __name__ == "__main__":
    main()
