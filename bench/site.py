"""Cold job start across a site (issue 18): node B's after node A fetched, against node A's,
and against node B without a site store.

    python -m bench.site [--runs 5] [--quick] [--profile loopback|cdn|far]

Three daemons on one Docker engine, each with its own store: A and B share a site store (an
s3rver bucket, on disk: moto copies a whole object for every ranged GET, which would be the
benchmark's bottleneck), C has none. Each round, from cold (no entry in any store, the image
not in the engine, the site store emptied before A):
  A  the job, cold, with an empty site store (it uploads afterwards; that is timed apart,
     as it delays no job)
  B  the same job, cold, with A's uploads in the site store
  C  the same job, cold, without a site store (what every node pays today)
The job has an HF repo with LFS files and an S3 prefix (read anonymously, as Nosana's public
bucket is: entries fetched with credentials are not shared by default), and a small image
pulled from the bench's registry by all three alike.

On loopback, upstream is as near as the site store, so B gains only what fewer requests and
a second copy on the same disk give. With `--profile cdn` (or far) the hub, the S3 host and
the registry sit behind that link (bench/link.py) and the site store stays on the local
network, as on a real site.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.cold import engine
from bench.common import daemon, interleave, link, machine, peers, save, summary
from tests.daemon_process import DaemonProcess
from tests.peers.dockerd import DockerPeer
from tests.peers.s3rver import S3rverPeer

MB = 1024 * 1024
REPO = "bench/site"
BUCKET = "bench"
PREFIX = "site/sd"
IMAGE = "ubuntu"  # one layer, in the bench registry the engine mirrors
SITE_BUCKET = "site-store"


def _job() -> dict[str, Any]:
    return {
        "version": "0.1",
        "type": "container",
        "ops": [
            {
                "type": "container/run",
                "id": "site",
                "args": {
                    "image": IMAGE,
                    "cmd": "true",
                    "resources": [
                        {"type": "HF", "repo": REPO, "target": "/models/hf"},
                        {"type": "S3", "url": "%%S3%%", "target": "/models/s3"},
                    ],
                },
            }
        ],
    }


def _upstream_urls(servers: dict[str, Any]) -> dict[str, str]:
    """Where the daemons reach upstream: through the link on a WAN profile (peers() puts
    the hub and the S3 host behind it); the site store is not."""
    return {"hub": servers["hub"], "static": servers["static"]}


@contextmanager
def _site_store() -> Iterator[S3rverPeer]:
    root = Path(tempfile.mkdtemp(prefix="bench-site-"))
    peer = S3rverPeer(root).start()
    try:
        peer.client().create_bucket(Bucket=SITE_BUCKET)
        yield peer
    finally:
        peer.stop()
        shutil.rmtree(root, ignore_errors=True)


def _empty(store: S3rverPeer) -> None:
    client = store.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=SITE_BUCKET):
        for item in page.get("Contents", ()):
            client.delete_object(Bucket=SITE_BUCKET, Key=item["Key"])


def _forget(node: DaemonProcess, peer: DockerPeer) -> None:
    """Cold again: no entry in the node's store, the image not in the engine."""
    client = node.client()
    for entry in client.get("/v1/resources")["resources"]:
        client.request("DELETE", f"/v1/resources/{entry['id']}")
    client.request("POST", "/v1/gc")
    docker = peer.client()
    for image in docker.images.list(name=IMAGE):
        docker.images.remove(image.id, force=True)
    docker.close()


def _run_job(node: DaemonProcess, s3_url: str) -> float:
    body = json.loads(json.dumps(_job()).replace("%%S3%%", s3_url))
    started = time.perf_counter()
    record = node.client().request(
        "POST", "/v1/jobs", body=body, params={"wait": True}, timeout=3600
    )
    elapsed = time.perf_counter() - started
    assert record["state"] == "completed", record
    return elapsed


def _manifests_uploaded(node: DaemonProcess) -> int:
    return int(node.client().get("/v1/status")["site"]["manifests_uploaded"])


def _wait_uploaded(node: DaemonProcess, manifests: int) -> float:
    """Seconds until the node has uploaded `manifests` manifests and owes nothing."""
    started = time.perf_counter()
    while True:
        site = node.client().get("/v1/status")["site"]
        if site["manifests_uploaded"] >= manifests and not site["uploads_pending"]:
            return time.perf_counter() - started
        time.sleep(0.02)


def _configs(
    peer: DockerPeer, upstream: dict[str, str], store: S3rverPeer
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The nodes' configuration with the site store, and without."""
    base: dict[str, dict[str, Any]] = {
        "docker": {"host": peer.host, "gpu": "none"},
        "huggingface": {"endpoint": upstream["hub"]},
        "store": {"min_free": "0"},
        "security": {"allow_private_urls": True},  # the upstreams are on loopback
    }
    site = {
        "store": f"s3://{SITE_BUCKET}/nodes",
        "endpoint_url": store.url,
        "access_key_id": store.access_key,
        "secret_access_key": store.secret_key,
    }
    return base | {"site": site}, base


def measure(runs: int, sizes: list[int], profile: str = "loopback") -> dict[str, Any]:
    spec = {
        "repos": {
            REPO: {f"model-{i:05}.safetensors": [s * MB, 5000 + i] for i, s in enumerate(sizes)}
            | {"config.json": [2048, 1]}
        },
        "bucket": BUCKET,
        "objects": {f"{PREFIX}/unet/part-{i}.bin": [s * MB, 6000 + i] for i, s in enumerate(sizes)},
    }
    uploads: list[float] = []
    with ExitStack() as stack:
        wan = stack.enter_context(link(profile))  # the upstreams behind it, not the site store
        peer = stack.enter_context(engine(wan))
        servers = stack.enter_context(peers(spec, wan))
        store = stack.enter_context(_site_store())
        upstream = _upstream_urls(servers)
        s3_url = f"{upstream['static']}/{BUCKET}/{PREFIX}"
        with_site, without = _configs(peer, upstream, store)
        a = stack.enter_context(daemon(with_site))
        b = stack.enter_context(daemon(with_site))
        c = stack.enter_context(daemon(without))

        def node_a() -> float:
            _empty(store)
            _forget(a, peer)
            manifests = _manifests_uploaded(a) + 2  # the HF and the S3 entry
            elapsed = _run_job(a, s3_url)
            uploads.append(_wait_uploaded(a, manifests))
            return elapsed

        def node(which: DaemonProcess) -> float:
            _forget(which, peer)
            return _run_job(which, s3_url)

        samples = interleave(
            runs,
            {
                "A: cold, empty site store": node_a,
                "B: cold, A's entries in the site store": lambda: node(b),
                "C: cold, no site store": lambda: node(c),
            },
        )
        b_site = b.client().get("/v1/status")["site"]
    times = {name: summary(values) for name, values in samples.items()}
    b_median = times["B: cold, A's entries in the site store"]["median_s"]
    return {
        "files_mib": sizes,
        "link": (
            "loopback (upstream and site store on this host)"
            if profile == "loopback"
            else f"{profile} (the hub, the S3 host and the registry; the site store on loopback)"
        ),
        "site_store": "s3rver (disk)",
        "times": times,
        "upload_after_a_s": summary(uploads),
        "b_bytes_from_site": b_site["bytes_from_site"],
        "b_bytes_from_upstream": b_site["bytes_from_upstream"],
        "speedup_b_vs_a": round(times["A: cold, empty site store"]["median_s"] / b_median, 2),
        "speedup_b_vs_c": round(times["C: cold, no site store"]["median_s"] / b_median, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="Small files, to check the bench.")
    parser.add_argument("--profile", default="loopback", help="the upstreams' link (cdn, far)")
    parser.add_argument(
        "--sizes",
        help="File sizes in MiB, comma-separated (one LFS file and one S3 object of each)",
    )
    args = parser.parse_args()
    sizes = [5, 20] if args.quick else [100, 300]
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",")]
    result = {"machine": machine(), **measure(args.runs, sizes, args.profile)}
    print(json.dumps(result, indent=1))
    print(f"results: {save('site-quick' if args.quick else 'site', result)}")


if __name__ == "__main__":
    main()
