"""Time-to-ready of a service job, cold, on a link (issue 19, measure 2).

    python -m bench.service [--runs 5] [--sizes 100,300] [--profile cdn]

The job: one op whose container reads its model (an HF repo and an S3 prefix, mounted
read-only) and then serves HTTP on port 8080 (`busybox httpd`); the bench polls the
published port until it answers 200. Nothing is on the host at the start: no image, no
model. Until service jobs with health checks land, "ready" is that first 200, for every
contender alike. Against:
  (a) Nosana's node's way: the resources one after another, one stream each
      (`snapshot_download` with one worker, then boto3 without threads), then `docker run`
      (which pulls the image);
  (b) the peers' parallel defaults, all at once (`snapshot_download`'s 8 workers, boto3's
      transfer manager, `docker pull`), then `docker run`.
Targets on `cdn`: at least 3x faster than (a), 1.5x than (b). The Docker registry, the hub
and the S3 host are all behind the link.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from bench.cold import IMAGE, engine
from bench.common import daemon, interleave, link, peers, save, scratch, summary
from tests.daemon_process import DaemonProcess
from tests.peers.dockerd import DockerPeer

MB = 1024 * 1024
REPO = "bench/service"
BUCKET = "bench"
PREFIX = "service/sd"
SERVE = (
    "cat /models/hf/*.safetensors /models/s3/unet/* > /dev/null"
    " && echo ready > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"
)
DAEMON = "daemon (POST /v1/jobs, cold)"
NOSANA = "(a) Nosana's node: one after another, one stream each"
PARALLEL = "(b) the peers' parallel defaults, all at once"

FETCH = """
import os, sys
def hf(workers):
    from huggingface_hub import snapshot_download
    snapshot_download({repo!r}, endpoint={hub!r}, local_dir={hf_dir!r}, max_workers=workers)
def s3(single):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from boto3.s3.transfer import TransferConfig
    config = Config(signature_version=UNSIGNED, s3={{"addressing_style": "path"}})
    client = boto3.client("s3", endpoint_url={static!r}, region_name="us-east-1", config=config)
    config = TransferConfig(use_threads=not single, max_concurrency=1 if single else 10)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket={bucket!r}, Prefix={prefix!r})
    for page in pages:
        for item in page.get("Contents", []):
            path = os.path.join({s3_dir!r}, os.path.relpath(item["Key"], {prefix!r}))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            client.download_file({bucket!r}, item["Key"], path, Config=config)
{body}
"""


def spec(sizes: list[int]) -> dict[str, Any]:
    files = {f"model-{i:05}.safetensors": [s * MB, 5000 + i] for i, s in enumerate(sizes)}
    objects = {f"{PREFIX}/unet/part-{i}.bin": [s * MB, 6000 + i] for i, s in enumerate(sizes)}
    return {
        "repos": {REPO: files | {"config.json": [2048, 1]}},
        "bucket": BUCKET,
        "objects": objects,
    }


def job() -> dict[str, Any]:
    resources = [
        {"type": "HF", "repo": REPO, "target": "/models/hf"},
        {"type": "S3", "url": f"s3://{BUCKET}/{PREFIX}", "target": "/models/s3"},
    ]
    args = {"image": IMAGE, "cmd": ["sh", "-c", SERVE], "expose": 8080, "resources": resources}
    op = {"type": "container/run", "id": "serve", "args": args}
    return {"version": "0.1", "type": "container", "ops": [op]}


def _answers(address: str, deadline: float) -> None:
    """Poll `http://address/` until it answers 200."""
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"http://{address}/", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{address} never answered")


def _forget(cache: DaemonProcess, peer: DockerPeer) -> None:
    """Cold again: no container, no image in the engine, nothing in the store."""
    client = cache.client()
    for record in client.get("/v1/jobs")["jobs"]:
        if record["state"] not in ("completed", "failed", "stopped"):
            client.request("POST", f"/v1/jobs/{record['id']}/stop")
    docker = peer.client()
    for container in docker.containers.list(all=True):
        container.remove(force=True)
    for entry in client.get("/v1/resources")["resources"]:
        client.request("DELETE", f"/v1/resources/{entry['id']}")
    client.request("POST", "/v1/gc")
    for image in docker.images.list(name=IMAGE.split(":")[0]):
        docker.images.remove(image.id, force=True)
    docker.close()


def measure(runs: int, sizes: list[int], profile: str = "cdn") -> dict[str, Any]:
    with link(profile) as wan, engine(wan) as peer, peers(spec(sizes), wan) as servers:
        config = {
            "docker": {"host": peer.host, "gpu": "none"},
            "huggingface": {"endpoint": servers["hub"]},
            "s3": {"endpoint_url": servers["static"]},
            "store": {"min_free": "0"},
        }
        docker_cli = shutil.which("docker") or "docker"
        with daemon(config) as cache:

            def ours() -> float:
                _forget(cache, peer)
                api = cache.client()
                started = time.perf_counter()
                record = api.request("POST", "/v1/jobs", body=job())
                deadline = started + 3600
                while time.perf_counter() < deadline:
                    record = api.get(f"/v1/jobs/{record['id']}")
                    assert record["state"] not in ("failed", "completed"), record
                    if record["ops"][0]["ports"]:
                        break
                    time.sleep(0.05)
                _answers(next(iter(record["ops"][0]["ports"].values())), deadline)
                return time.perf_counter() - started

            def tools(parallel: bool) -> float:
                _forget(cache, peer)
                work = tempfile.mkdtemp(dir=scratch())
                hf_dir, s3_dir = os.path.join(work, "hf"), os.path.join(work, "s3")

                def fetch(body: str) -> None:
                    code = FETCH.format(
                        repo=REPO,
                        hub=servers["hub"],
                        static=servers["static"],
                        bucket=BUCKET,
                        prefix=PREFIX,
                        hf_dir=hf_dir,
                        s3_dir=s3_dir,
                        body=body,
                    )
                    env = {**os.environ, "HF_HUB_DISABLE_XET": "1"}
                    subprocess.run([sys.executable, "-c", code], check=True, env=env)

                docker = [docker_cli, "-H", peer.host]
                started = time.perf_counter()
                try:
                    if parallel:
                        with concurrent.futures.ThreadPoolExecutor(3) as pool:
                            pending: list[concurrent.futures.Future[Any]] = [
                                pool.submit(fetch, "hf(8)"),
                                pool.submit(fetch, "s3(False)"),
                                pool.submit(
                                    subprocess.run,
                                    [*docker, "pull", IMAGE],
                                    check=True,
                                    capture_output=True,
                                ),
                            ]
                            for future in pending:
                                future.result()
                    else:
                        fetch("hf(1)")
                        fetch("s3(True)")
                    run = [*docker, "run", "-d", "-p", "127.0.0.1::8080"]
                    run += ["-v", f"{hf_dir}:/models/hf:ro", "-v", f"{s3_dir}:/models/s3:ro"]
                    container = subprocess.run(
                        [*run, IMAGE, "sh", "-c", SERVE], check=True, capture_output=True, text=True
                    ).stdout.strip()
                    port = subprocess.run(
                        [*docker, "port", container, "8080/tcp"],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout.split()[0]
                    _answers(port, started + 3600)
                    return time.perf_counter() - started
                finally:
                    shutil.rmtree(work, ignore_errors=True)

            samples = interleave(
                runs, {DAEMON: ours, NOSANA: lambda: tools(False), PARALLEL: lambda: tools(True)}
            )
            _forget(cache, peer)
        carried = {} if wan is None else wan.stats()["listeners"]
    times = {name: summary(values) for name, values in samples.items()}
    ours_median = times[DAEMON]["median_s"]
    return {
        "profile": profile,
        "files_mib": sizes,
        "times": times,
        "speedup_vs_a": round(times[NOSANA]["median_s"] / ours_median, 2),
        "speedup_vs_b": round(times[PARALLEL]["median_s"] / ours_median, 2),
        "mib_through_each_listener": {
            name: round(c["bytes_down"] / MB, 1) for name, c in carried.items()
        },
        "served_by": (
            f"the bench's hub, content host and S3 host (bench/servers.py) and a Docker "
            f"registry (docker-registry, the engine's mirror), all through the {profile} link"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="100,300", help="file sizes in MiB (HF and S3 each)")
    parser.add_argument("--profile", default="cdn")
    args = parser.parse_args()
    result = measure(args.runs, [int(s) for s in args.sizes.split(",")], args.profile)
    print(json.dumps(result, indent=2))
    print(f"saved to {save(f'service-{args.profile}', result)}")


if __name__ == "__main__":
    main()
