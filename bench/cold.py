"""Cold job start, the herd, and deduplication (issue 9, measurements 1, 4 and 5).

Cold job start: a job whose image (several layers) and two resources (an HF repo with LFS
files, an S3 prefix) are nowhere on the host, from submit to the container's exit, against:
  (a) Nosana's node: resources one after another, single stream each (huggingface_hub's
      `snapshot_download` with one worker, then boto3 with one stream), then `docker run`
      (which pulls the image);
  (b) the same tools with their parallel defaults, all three at once.
Herd: 50 jobs submitted at once on one cold resource: bytes the upstream served (target: one
copy) and the time until every job ended.
Dedup: a second revision of an HF repo that changes 1 file of 10: bytes fetched and bytes
added to the store, against huggingface_hub's own cache doing the same.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Wan, daemon, interleave, peers, scratch, summary
from tests.daemon_process import DaemonProcess
from tests.peers.dockerd import DockerPeer
from tests.peers.images import publish
from tests.peers.registry import RegistryPeer

MB = 1024 * 1024
IMAGE = "nosana/multi:1.0"
REPO = "bench/cold"
BUCKET = "bench"
PREFIX = "cold/sd"

FETCH = """
import atexit, os, shutil, sys, time, tempfile
started = time.perf_counter()
def workspace():
    path = tempfile.mkdtemp(dir={scratch!r})
    atexit.register(shutil.rmtree, path, True)  # after the time is printed
    return path
def hf(workers):
    from huggingface_hub import snapshot_download
    snapshot_download({repo!r}, endpoint={hub!r}, cache_dir=workspace(), max_workers=workers)
def s3(single):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from boto3.s3.transfer import TransferConfig
    config = Config(signature_version=UNSIGNED, s3={{"addressing_style": "path"}})
    client = boto3.client("s3", endpoint_url={static!r}, region_name="us-east-1", config=config)
    config = TransferConfig(use_threads=not single, max_concurrency=1 if single else 10)
    target = workspace()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket={bucket!r}, Prefix={prefix!r})
    for page in pages:
        for item in page.get("Contents", []):
            path = os.path.join(target, item["Key"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            client.download_file({bucket!r}, item["Key"], path, Config=config)
{body}
print(time.perf_counter() - started)
"""


@contextmanager
def engine(wan: Wan | None = None) -> Iterator[DockerPeer]:
    """A Docker engine pulling Docker Hub names from the bench's registry (through the
    link's `registry` listener, given one), the standard images pushed there."""
    registry = RegistryPeer(Path(tempfile.mkdtemp(prefix="bench-registry-"))).start()
    mirror = registry.url
    if wan is not None:
        wan.forward({"registry": registry.url})
        mirror = wan.urls["registry"]
    peer = DockerPeer(mirror=mirror).start()
    try:
        client = peer.client()
        publish(client, registry.host)
        client.close()
        yield peer
    finally:
        peer.stop()
        registry.stop()


def _job(ops: int = 1, cmd: str = "true") -> dict[str, Any]:
    resources = [
        {"type": "HF", "repo": REPO, "target": "/models/hf"},
        {"type": "S3", "url": f"s3://{BUCKET}/{PREFIX}", "target": "/models/s3"},
    ]
    return {
        "version": "0.1",
        "type": "container",
        "ops": [
            {
                "type": "container/run",
                "id": f"op{i}",
                "args": {"image": IMAGE, "cmd": cmd, "resources": resources},
            }
            for i in range(ops)
        ],
    }


def _forget_everything(cache: DaemonProcess, peer: DockerPeer) -> None:
    """Cold again: no image in the engine, nothing in the store."""
    client = cache.client()
    for entry in client.get("/v1/resources")["resources"]:
        client.request("DELETE", f"/v1/resources/{entry['id']}")
    client.request("POST", "/v1/gc")
    docker = peer.client()
    for image in docker.images.list(name=IMAGE.split(":")[0]):
        docker.images.remove(image.id, force=True)
    docker.close()


def cold_start(runs: int, sizes: list[int]) -> dict[str, Any]:
    spec = {
        "repos": {
            REPO: {f"model-{i:05}.safetensors": [s * MB, 3000 + i] for i, s in enumerate(sizes)}
            | {"config.json": [2048, 1]}
        },
        "bucket": BUCKET,
        "objects": {f"{PREFIX}/unet/part-{i}.bin": [s * MB, 4000 + i] for i, s in enumerate(sizes)},
    }
    with engine() as peer, peers(spec) as servers:
        config = {
            "docker": {"host": peer.host, "gpu": "none"},
            "huggingface": {"endpoint": servers["hub"]},
            "s3": {"endpoint_url": servers["static"]},
            "store": {"min_free": "0"},
        }
        docker_cli = shutil.which("docker") or "docker"
        with daemon(config) as cache:

            def ours() -> float:
                _forget_everything(cache, peer)
                started = time.perf_counter()
                record = cache.client().request(
                    "POST", "/v1/jobs", body=_job(), params={"wait": True}, timeout=3600
                )
                assert record["state"] == "completed", record
                return time.perf_counter() - started

            def fetch(body: str) -> str:
                return FETCH.format(
                    repo=REPO,
                    hub=servers["hub"],
                    static=servers["static"],
                    bucket=BUCKET,
                    prefix=PREFIX,
                    scratch=scratch(),
                    body=body,
                )

            def tools(parallel: bool) -> float:
                _forget_everything(cache, peer)
                run = [docker_cli, "-H", peer.host, "run", "--rm", IMAGE, "true"]
                started = time.perf_counter()
                if parallel:
                    with concurrent.futures.ThreadPoolExecutor(3) as pool:
                        jobs: list[concurrent.futures.Future[Any]] = [
                            pool.submit(_python, fetch("hf(8)")),
                            pool.submit(_python, fetch("s3(False)")),
                            pool.submit(
                                subprocess.run,
                                [docker_cli, "-H", peer.host, "pull", IMAGE],
                                check=True,
                                capture_output=True,
                            ),
                        ]
                        for job in jobs:
                            job.result()
                else:
                    _python(fetch("hf(1)"))
                    _python(fetch("s3(True)"))
                subprocess.run(run, check=True, capture_output=True)
                return time.perf_counter() - started

            samples = interleave(
                runs,
                {
                    "daemon (POST /v1/jobs?wait=true, cold)": ours,
                    "(a) Nosana's node: one after another, single stream": lambda: tools(False),
                    "(b) the tools' parallel defaults, all at once": lambda: tools(True),
                },
            )
    times = {name: summary(values) for name, values in samples.items()}
    ours_median = times["daemon (POST /v1/jobs?wait=true, cold)"]["median_s"]
    return {
        "files_mib": sizes,
        "times": times,
        "speedup_vs_a": round(
            times["(a) Nosana's node: one after another, single stream"]["median_s"] / ours_median,
            2,
        ),
        "speedup_vs_b": round(
            times["(b) the tools' parallel defaults, all at once"]["median_s"] / ours_median, 2
        ),
    }


def _python(code: str) -> None:
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        env={**os.environ, "HF_HUB_DISABLE_XET": "1"},
    )


def herd(jobs: int = 50, size_mib: int = 200) -> dict[str, Any]:
    spec = {"repos": {"bench/herd": {"w.safetensors": [size_mib * MB, 77]}}}
    with engine() as peer, peers(spec) as servers:
        config = {
            "docker": {"host": peer.host, "gpu": "none"},
            "huggingface": {"endpoint": servers["hub"]},
            "store": {"min_free": "0"},
        }
        with daemon(config) as cache:
            definition = {
                "version": "0.1",
                "type": "container",
                "ops": [
                    {
                        "type": "container/run",
                        "id": "h",
                        "args": {
                            "image": IMAGE,
                            "cmd": "true",
                            "resources": [{"type": "HF", "repo": "bench/herd", "target": "/m"}],
                        },
                    }
                ],
            }
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
                records = list(
                    pool.map(
                        lambda _i: cache.client().request(
                            "POST", "/v1/jobs", body=definition, params={"wait": True}, timeout=3600
                        ),
                        range(jobs),
                    )
                )
            elapsed = time.perf_counter() - started
            assert all(r["state"] == "completed" for r in records), [r["error"] for r in records]
            metrics = cache.client()._send("GET", "/metrics").read().decode()
    received = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("nosana_cache_received_bytes_total")
    )
    return {
        "jobs": jobs,
        "resource_bytes": size_mib * MB,
        "bytes_from_upstream": int(received),
        "copies_fetched": round(received / (size_mib * MB), 2),
        "seconds_until_all_ended": round(elapsed, 2),
    }


DEDUP = """
import os, time
from huggingface_hub import snapshot_download
def size(root):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs
               if not os.path.islink(os.path.join(d, f)))
before = size({cache!r})
snapshot_download({repo!r}, endpoint={hub!r}, cache_dir={cache!r}, revision={revision!r})
print(size({cache!r}) - before)
"""


def dedup(files: int = 10, size_mib: int = 20) -> dict[str, Any]:
    """Revision 2 changes one file of ten: what each tool downloads and adds to disk."""
    first = {f"shard-{i:02}.safetensors": [size_mib * MB, 500 + i] for i in range(files)}
    second = dict(first) | {"shard-00.safetensors": [size_mib * MB, 999]}
    spec = {"repos": {"bench/dedup": [first, second]}}
    with peers(spec) as servers:
        old, new = servers["commits"]["bench/dedup"]
        config = {"huggingface": {"endpoint": servers["hub"]}, "store": {"min_free": "0"}}
        with daemon(config) as cache:
            client = cache.client()

            def pull(revision: str) -> None:
                body = {"type": "HF", "repo": "bench/dedup", "revision": revision}
                client.request(
                    "POST", "/v1/resources", body=body, params={"wait": True}, timeout=600
                )

            pull(old)
            used = client.get("/v1/status")["store"]["bytes_used"]
            metrics_before = _received(cache)
            pull(new)
            ours_fetched = _received(cache) - metrics_before
            ours_added = client.get("/v1/status")["store"]["bytes_used"] - used
        hf_cache = tempfile.mkdtemp(dir=scratch())
        try:
            for revision in (old, new):
                code = DEDUP.format(
                    cache=hf_cache, repo="bench/dedup", hub=servers["hub"], revision=revision
                )
                added = int(_out(code))
        finally:
            shutil.rmtree(hf_cache, ignore_errors=True)
    return {
        "file_bytes": size_mib * MB,
        "daemon_bytes_fetched": ours_fetched,
        "daemon_bytes_added_to_store": ours_added,
        "huggingface_hub_bytes_added_to_cache": added,
        "note": "revision 2 of the same repo: nine files unchanged, one new",
    }


def _received(cache: DaemonProcess) -> int:
    text = cache.client()._send("GET", "/metrics").read().decode()
    return int(
        float(
            next(
                line.split()[-1]
                for line in text.splitlines()
                if line.startswith("nosana_cache_received_bytes_total")
            )
        )
    )


def _out(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_DISABLE_XET": "1"},
    )
    return result.stdout.strip().splitlines()[-1]
