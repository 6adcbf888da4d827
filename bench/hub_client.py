"""Run inside the benchmark's job container by the image's own Python (bench/hub_image.py),
against whatever `HF_ENDPOINT` the container has; prints one JSON line.

    hub_client.py ttfb REPO FILE    seconds from a GET of FILE to its first 64 KiB
    hub_client.py snapshot REPO     seconds for huggingface_hub's snapshot_download of REPO
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request


def ttfb(repo: str, path: str) -> dict[str, float]:
    url = f"{os.environ['HF_ENDPOINT']}/{repo}/resolve/main/{path}"
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as response:
        response.read(64 * 1024)
        return {"ttfb_s": time.perf_counter() - started}


def snapshot(repo: str) -> dict[str, float]:
    from huggingface_hub import snapshot_download

    started = time.perf_counter()
    folder = snapshot_download(repo, cache_dir="/tmp/hf")
    elapsed = time.perf_counter() - started
    size = sum(
        os.path.getsize(os.path.join(root, name))
        for root, _dirs, names in os.walk(folder)
        for name in names
    )
    return {"seconds": elapsed, "bytes": size}


if __name__ == "__main__":
    operation, *args = sys.argv[1:]
    result = ttfb(*args) if operation == "ttfb" else snapshot(*args)
    print(json.dumps(result), flush=True)
