"""Image pulls through the registry endpoint (issue 27), against plain `docker pull`:

    python -m bench.image [--runs 3] [--quick] [--profile cdn,far] [--sizes 1536,64,16,4]

One Docker engine, one registry (docker-registry) holding an image of several layers, one of
about 1.5 GiB (bench/image_push.py), the link of a profile (bench/link.py) in front of it.
Contenders, interleaved round by round (bench/common.py), each a pull that ends when the
engine has unpacked the image, followed (untimed) by `docker rmi`:

  plain     the engine straight at the registry behind the link: what every node does today
  loopback  the engine at the registry on loopback: what is left is unpacking (the floor)
  A cold    the engine at daemon A's registry endpoint, A's store and the site store empty
            (both daemons started afresh each round, on a new prefix of the site store);
            A fetches from the registry behind the link
  A warm    the same after `docker rmi`: every layer from A's store
  B site    the engine at daemon B's endpoint, B's store empty, A's uploads in the site store
            (an s3rver bucket on loopback, as a site's store is on the local network)

The engine pulls `127.0.0.1:PORT/bench/big:1` from each (loopback registries are plain HTTP
to Docker without configuration), so one engine serves every contender; the endpoint takes a
one-component-host-free name as Docker Hub's and fetches Docker Hub from
`docker.registry_mirrors`, the registry behind the link. Targets on `far`: A cold at least 4x
faster than plain, and within 1.3x of loopback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import daemon, interleave, link, machine, save, scratch, summary
from bench.image_push import PushedImage, push
from bench.profiles import profile as profile_of
from bench.site import SITE_BUCKET, _site_store
from tests.daemon_process import DaemonProcess
from tests.peers.dockerd import DockerPeer
from tests.peers.procs import free_port
from tests.peers.registry import RegistryPeer
from tests.peers.s3rver import S3rverPeer

MiB = 1024 * 1024
NAME, TAG = "bench/big", "1"
PLAIN, LOOPBACK, COLD, WARM, SITE = "plain", "loopback", "A cold", "A warm", "B site"
FLOOR_NOTE = (
    "link_floor_s: the image's bytes at the link's aggregate rate, then what the engine still"
    " did after the endpoint's last byte (A cold's unpacking of its last layer): the engine"
    " (moby) writes a layer to a temporary file whole before it unpacks it, so no source can"
    " make a cold pull shorter than the big layer's transfer plus its unpacking"
)


def _config(upstream: str, port: int, store: S3rverPeer, prefix: str) -> dict[str, dict[str, Any]]:
    return {
        "docker": {"gpu": "none", "registry_mirrors": {"docker.io": upstream}},
        "registry": {"listen": f"127.0.0.1:{port}"},
        "store": {"min_free": "0"},
        "site": {
            "store": f"s3://{SITE_BUCKET}/{prefix}",
            "endpoint_url": store.url,
            "access_key_id": store.access_key,
            "secret_access_key": store.secret_key,
        },
    }


class Nodes:
    """Daemons A and B, started afresh each round on a prefix of the site store of their own:
    cold really is cold (no entry, no upload journal, an empty site store), and no round
    depends on what the site store's emptying left (s3rver cannot list a multipart upload's
    parts, so a node that finds one in its journal could not continue it)."""

    def __init__(self, upstream: str, store: S3rverPeer) -> None:
        self.upstream = upstream
        self.store = store
        self.ports = free_port(), free_port()
        self.rounds = 0
        self._stack = ExitStack()
        self.a: DaemonProcess
        self.b: DaemonProcess

    def renew(self) -> None:
        self._stack.close()
        self.rounds += 1
        prefix = f"round-{self.rounds}"
        configs = [_config(self.upstream, port, self.store, prefix) for port in self.ports]
        self.a, self.b = (self._stack.enter_context(daemon(config)) for config in configs)

    def close(self) -> None:
        self._stack.close()


def _pull(engine: DockerPeer, host: str, image: PushedImage) -> float:
    """Seconds for the engine to pull and unpack the image from `host`; then it is removed."""
    client = engine.client()
    try:
        started = time.perf_counter()
        pulled = client.images.pull(f"{host}/{image.name}", tag=image.tag)
        elapsed = time.perf_counter() - started
        assert pulled.id == image.image_id, (pulled.id, image.image_id)
        client.images.remove(pulled.id, force=True)
        client.images.prune(filters={"dangling": False})
    finally:
        client.close()
    return elapsed


def _uploaded(node: DaemonProcess, manifests: int, timeout: float = 1800) -> float:
    """Seconds until the node has uploaded `manifests` manifests and owes nothing."""
    started = time.perf_counter()
    while True:
        site = node.client().get("/v1/status")["site"]
        if site["manifests_uploaded"] >= manifests and not site["uploads_pending"]:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"uploads to the site store unfinished: {site}")
        time.sleep(0.05)


def _last_pull(node: DaemonProcess) -> dict[str, Any]:
    return dict(node.client().get("/v1/status")["registry"]["pulls"][0])


def measure(runs: int, sizes_mib: list[int], profile: str) -> dict[str, Any]:
    """One profile's medians; sizes are the layers' in MiB (the config comes on top)."""
    uploads: list[float] = []
    pulls: dict[str, list[dict[str, Any]]] = {COLD: [], SITE: []}
    with ExitStack() as stack:
        wan = stack.enter_context(link(profile))
        assert wan is not None, "the image benchmark needs a link (cdn, far)"
        work = Path(tempfile.mkdtemp(prefix="bench-image-", dir=scratch()))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        registry = RegistryPeer(work / "registry").start()
        stack.callback(registry.stop)
        image = push(registry.url, NAME, TAG, [s * MiB for s in sizes_mib], work)
        wan.forward({"registry": registry.url})
        far = wan.urls["registry"]
        engine = DockerPeer().start()
        stack.callback(engine.stop)
        store = stack.enter_context(_site_store())
        nodes = Nodes(far, store)
        stack.callback(nodes.close)
        a_host, b_host = (f"127.0.0.1:{port}" for port in nodes.ports)
        manifests = 2 + 1 + len(sizes_mib)  # the tag, the manifest, the config, the layers

        def cold() -> float:
            nodes.renew()
            elapsed = _pull(engine, a_host, image)
            pulls[COLD].append(_last_pull(nodes.a))
            uploads.append(_uploaded(nodes.a, manifests))
            return elapsed

        def site() -> float:
            elapsed = _pull(engine, b_host, image)
            pulls[SITE].append(_last_pull(nodes.b))
            return elapsed

        contenders: dict[str, Callable[[], float]] = {
            PLAIN: lambda: _pull(engine, far.split("://", 1)[1], image),
            LOOPBACK: lambda: _pull(engine, registry.host, image),
            COLD: cold,
            WARM: lambda: _pull(engine, a_host, image),
            SITE: site,
        }
        samples = interleave(runs, contenders)
    return _result(profile, sizes_mib, image, samples, uploads, pulls)


def _result(
    profile: str,
    sizes_mib: list[int],
    image: PushedImage,
    samples: dict[str, list[float]],
    uploads: list[float],
    pulls: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    times = {name: summary(values) for name, values in samples.items()}
    median = {name: value["median_s"] for name, value in times.items()}
    site_upstream = [p["bytes_from_upstream"] for p in pulls[SITE]]
    serving = summary([p["seconds"] for p in pulls[COLD]])["median_s"]
    unpack_after = max(0.0, median[COLD] - serving)
    floor = image.layer_bytes / profile_of(profile).aggregate + unpack_after
    return {
        "link": profile,
        "layers_mib": sizes_mib,
        "image_bytes": image.layer_bytes,
        "times": times,
        "a_upload_after_cold_s": summary(uploads),
        "a_cold_rate_mib_s": round(
            max(p["rate_bytes_per_s"] for p in pulls[COLD]) / MiB, 1
        ),  # the endpoint's own figure: bytes to the engine from first request to last byte
        "b_bytes_from_upstream": max(site_upstream),
        "b_bytes_from_site": min(p["bytes_from_site"] for p in pulls[SITE]),
        "a_cold_serving_s": serving,
        "a_cold_unpack_after_last_byte_s": round(unpack_after, 3),
        "link_floor_s": round(floor, 3),
        "cold_vs_link_floor": round(median[COLD] / floor, 2),
        "speedup_cold_vs_plain": round(median[PLAIN] / median[COLD], 2),
        "cold_vs_loopback": round(median[COLD] / median[LOOPBACK], 2),
        "warm_vs_loopback": round(median[WARM] / median[LOOPBACK], 2),
        "site_vs_loopback": round(median[SITE] / median[LOOPBACK], 2),
        "targets_far": "cold at least 4x faster than plain, within 1.3x of loopback",
        "floor_note": FLOOR_NOTE,
    }


def run(runs: int, sizes_mib: list[int], profiles: list[str]) -> dict[str, Any]:
    return {name: measure(runs, sizes_mib, name) for name in profiles}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="A small image, one run.")
    parser.add_argument("--profile", default="cdn,far", help="links, comma-separated")
    parser.add_argument("--sizes", help="layer sizes in MiB, comma-separated")
    args = parser.parse_args()
    sizes = [16, 4, 1] if args.quick else [1536, 64, 16, 4]
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",")]
    runs = 1 if args.quick else args.runs
    result = {"machine": machine(), "runs": runs, **run(runs, sizes, args.profile.split(","))}
    print(json.dumps(result, indent=1))
    print(f"results: {save('image-quick' if args.quick else 'image', result)}")


if __name__ == "__main__":
    main()
