"""Cold downloads (issue 4): the daemon against what users would run instead, in one run.

    python -m bench.transfers [--runs 5] [--sizes 100,400,1000]

- HF: the daemon's `POST /v1/resources?wait=true` against huggingface_hub's
  `snapshot_download` (default 8 workers), on the same repo from the same fake hub;
- S3: the daemon against boto3's transfer manager with default settings, every object of the
  prefix submitted at once (what `aws s3 sync` does), from the same S3-compatible host;
- both against the machine's limits: the same bytes fetched by parallel `curl` into
  /dev/null, and the disk's sequential write speed (`dd` with fsync).

Neither the daemon nor the tools wait for the disk (the daemon's blobs are made durable by
the store's checkpoint, a syncfs every 30 s), so the ratios are against the tools as they
are; the tools are also timed "+ sync" (until their bytes are on disk), for reference.
Servers run in a separate process (bench/servers.py); the S3 host streams (it is not moto,
which copies a whole object for every ranged GET).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from typing import Any

from bench.common import (
    daemon,
    disk_write_speed,
    interleave,
    machine,
    parallel_curl,
    peers,
    save,
    scratch,
    summary,
    timed_python,
)

MB = 1024 * 1024
REPO = "bench/model"
BUCKET = "bench"
PREFIX = "models/sd"

SNAPSHOT = """
import time, sys
from huggingface_hub import snapshot_download
started = time.perf_counter()
snapshot_download({repo!r}, endpoint={endpoint!r}, cache_dir={cache!r})
if {sync}:
    import os; os.sync()
print(time.perf_counter() - started)
"""

BOTO3 = """
import time, os
import boto3
from botocore import UNSIGNED
from botocore.config import Config
from boto3.s3.transfer import TransferConfig
from s3transfer.manager import TransferManager
started = time.perf_counter()
client = boto3.client("s3", endpoint_url={endpoint!r}, region_name="us-east-1",
                      config=Config(signature_version=UNSIGNED, s3={{"addressing_style": "path"}}))
manager = TransferManager(client, TransferConfig())
futures = []
for page in client.get_paginator("list_objects_v2").paginate(Bucket={bucket!r}, Prefix={prefix!r}):
    for item in page.get("Contents", []):
        target = os.path.join({target!r}, item["Key"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        futures.append(manager.download({bucket!r}, item["Key"], target))
for future in futures:
    future.result()
manager.shutdown()
if {sync}:
    os.sync()
print(time.perf_counter() - started)
"""


def spec(sizes: list[int]) -> dict[str, Any]:
    files = {f"model-{i:05}.safetensors": [size * MB, 1000 + i] for i, size in enumerate(sizes)}
    files["config.json"] = [2048, 1]
    files["tokenizer.json"] = [2 * MB, 2]  # below the LFS cut: a git blob
    objects = {f"{PREFIX}/unet/part-{i}.bin": [size * MB, 2000 + i] for i, size in enumerate(sizes)}
    objects[f"{PREFIX}/model_index.json"] = [1024, 3]
    return {"repos": {REPO: files}, "bucket": BUCKET, "objects": objects}


def measure(runs: int, sizes: list[int]) -> dict[str, Any]:
    wanted = spec(sizes)
    total_hf = sum(size for size, _seed in wanted["repos"][REPO].values())
    total_s3 = sum(size for size, _seed in wanted["objects"].values())
    with peers(wanted) as servers:
        config = {
            "huggingface": {"endpoint": servers["hub"]},
            "s3": {"endpoint_url": servers["static"]},
            "store": {"min_free": "0"},
        }
        hf_urls = [f"{servers['hub']}/{REPO}/resolve/main/{path}" for path in wanted["repos"][REPO]]
        s3_urls = [f"{servers['static']}/{BUCKET}/{key}" for key in wanted["objects"]]
        with daemon(config) as cache:

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

            def snapshot(sync: bool) -> float:
                cache_dir = tempfile.mkdtemp(dir=scratch())
                try:
                    code = SNAPSHOT.format(
                        repo=REPO, endpoint=servers["hub"], cache=cache_dir, sync=sync
                    )
                    return timed_python(code, {"HF_HUB_DISABLE_XET": "1"})
                finally:
                    shutil.rmtree(cache_dir, ignore_errors=True)

            def boto3(sync: bool) -> float:
                target = tempfile.mkdtemp(dir=scratch())
                try:
                    code = BOTO3.format(
                        endpoint=servers["static"],
                        bucket=BUCKET,
                        prefix=PREFIX,
                        target=target,
                        sync=sync,
                    )
                    return timed_python(code)
                finally:
                    shutil.rmtree(target, ignore_errors=True)

            hf = interleave(
                runs,
                {
                    "daemon": lambda: cold({"type": "HF", "repo": REPO}),
                    "snapshot_download": lambda: snapshot(False),
                    "snapshot_download + sync": lambda: snapshot(True),
                    "parallel curl": lambda: parallel_curl(hf_urls),
                },
            )
            s3 = interleave(
                runs,
                {
                    "daemon": lambda: cold({"type": "S3", "url": f"s3://{BUCKET}/{PREFIX}"}),
                    "boto3 transfer manager": lambda: boto3(False),
                    "boto3 transfer manager + sync": lambda: boto3(True),
                    "parallel curl": lambda: parallel_curl(s3_urls),
                },
            )
    disk = disk_write_speed(max(total_hf, total_s3))
    return {
        "machine": machine(),
        "files_mib": sizes,
        "hf": report(hf, total_hf, disk, "snapshot_download"),
        "s3": report(s3, total_s3, disk, "boto3 transfer manager"),
        "disk_write_mib_s": round(disk / MB, 1),
    }


def report(samples: dict[str, list[float]], total: int, disk: float, rival: str) -> dict[str, Any]:
    medians = {name: summary(times) for name, times in samples.items()}
    ours = medians["daemon"]["median_s"]
    limit = min(total / medians["parallel curl"]["median_s"], disk)
    return {
        "bytes": total,
        "times": medians,
        "speedup_vs_" + rival.replace(" ", "_"): round(medians[rival]["median_s"] / ours, 2),
        "speedup_vs_" + rival.replace(" ", "_") + "_with_sync": round(
            medians[rival + " + sync"]["median_s"] / ours, 2
        ),
        "daemon_mib_s": round(total / ours / MB, 1),
        "fraction_of_machine_limit": round(total / ours / limit, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="100,400,1000", help="LFS file sizes in MiB")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed (apt-get install curl)")
    result = measure(args.runs, [int(s) for s in args.sizes.split(",")])
    print(json.dumps(result, indent=2))
    print(f"saved to {save('transfers', result)}")


if __name__ == "__main__":
    main()
