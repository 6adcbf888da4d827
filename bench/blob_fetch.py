"""One cold blob through the registry endpoint, without an engine: where is the ceiling?

    python -m bench.blob_fetch [--profile loopback,cdn] [--runs 3] [--size 1024]
                               [--code NAME=PATH ...] [--spy DIR]

The test registry (docker-registry) holds one layer of `--size` MiB (bench/image_push.py); a
daemon started afresh for each run (its store empty) fetches it from there, straight on
loopback or through a link (bench/link.py), while curl GETs it from the daemon's registry
endpoint to /dev/null. Each run reports the seconds, the rate, and the CPU seconds the daemon
and the link's relay spent: a run whose daemon (or relay) used about one core's worth of the
seconds is held by that process, not by the link. `--code` runs the same daemon from other
checkouts (their PYTHONPATH), interleaved with this one, for before/after comparisons; `--spy`
records a py-spy flame graph of each daemon (py-spy is not a project dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Wan,
    daemon,
    interleave,
    link,
    machine,
    process_cpu_seconds,
    scratch,
    summary,
)
from bench.image_push import MANIFEST, push
from tests.peers.registry import RegistryPeer

MiB = 1024 * 1024
NAME, TAG = "bench/blob", "1"


def _layer_digest(registry: str) -> tuple[str, int]:
    request = urllib.request.Request(
        f"{registry}/v2/{NAME}/manifests/{TAG}", headers={"Accept": MANIFEST}
    )
    with urllib.request.urlopen(request) as answer:
        layers = json.load(answer)["layers"]
    return layers[0]["digest"], layers[0]["size"]


def _fetch(
    upstream: str, digest: str, size: int, code: str, wan: Wan | None, spy: Path | None
) -> dict[str, float]:
    """A fresh daemon on `code` (a checkout, then `;key=value` pairs of its `[download]`
    settings) GETs the blob for curl; seconds, CPU."""
    code, *pairs = code.split(";")
    config: dict[str, dict[str, Any]] = {
        "docker": {"gpu": "none", "registry_mirrors": {"docker.io": upstream}},
        "store": {"min_free": "0"},
        "download": dict(_setting(pair) for pair in pairs),
    }
    # Safe path: `python -m` would put the working directory (this checkout) first.
    with daemon(config, env={"PYTHONPATH": code, "PYTHONSAFEPATH": "1"}) as node:
        assert node.process is not None
        pid = node.process.pid
        endpoint = node.config["registry"]["listen"]
        recorder = _spy(pid, spy) if spy is not None else None
        relay_before = wan.stats()["cpu_seconds"] if wan is not None else 0.0
        cpu_before = process_cpu_seconds(pid)
        curl = ["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{size_download}"]
        manifest = [
            *curl,
            "-H",
            f"Accept: {MANIFEST}",
            f"http://{endpoint}/v2/{NAME}/manifests/{TAG}",
        ]
        subprocess.run(manifest, capture_output=True, check=True)  # as an engine: sizes known
        started = time.perf_counter()
        got = subprocess.run(
            [*curl, f"http://{endpoint}/v2/{NAME}/blobs/{digest}"],
            capture_output=True,
            text=True,
            check=True,
        )
        elapsed = time.perf_counter() - started
        cpu = process_cpu_seconds(pid) - cpu_before
        relay = wan.stats()["cpu_seconds"] - relay_before if wan is not None else 0.0
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
    assert int(got.stdout) == size, (got.stdout, size)
    return {
        "seconds": round(elapsed, 3),
        "mib_s": round(size / MiB / elapsed, 1),
        "daemon_cpu_s": round(cpu, 2),
        "relay_cpu_s": round(relay, 2),
    }


def _setting(pair: str) -> tuple[str, Any]:
    key, _, value = pair.partition("=")
    return key, int(value) if value.isdigit() else value


def _spy(pid: int, folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"daemon-{pid}.txt"
    py_spy = Path(os.path.dirname(os.path.realpath(__file__))).parent / ".venv" / "bin" / "py-spy"
    return subprocess.Popen(
        [str(py_spy), "record", "--pid", str(pid), "--format", "raw", "-o", str(out), "--threads"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(
    profile: str, runs: int, size_mib: int, codes: dict[str, str], spy: Path | None
) -> dict[str, Any]:
    with ExitStack() as stack:
        wan = stack.enter_context(link(profile))
        work = Path(tempfile.mkdtemp(prefix="bench-blob-", dir=scratch()))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        registry = RegistryPeer(work / "registry").start()
        stack.callback(registry.stop)
        push(registry.url, NAME, TAG, [size_mib * MiB], work)
        digest, size = _layer_digest(registry.url)
        upstream = registry.url
        if wan is not None:
            wan.forward({"registry": registry.url})
            upstream = wan.urls["registry"]
        details: dict[str, list[dict[str, float]]] = {name: [] for name in codes}

        def contender(name: str, code: str) -> Callable[[], float]:
            def run() -> float:
                result = _fetch(upstream, digest, size, code, wan, spy)
                details[name].append(result)
                return result["seconds"]

            return run

        samples = interleave(runs, {name: contender(name, code) for name, code in codes.items()})
    return {name: {"times": summary(samples[name]), "runs": details[name]} for name in codes} | {
        "bytes": size
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="loopback,cdn", help="links, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024, help="the layer, in MiB")
    parser.add_argument(
        "--code", action="append", default=[], help="NAME=PATH[;KEY=VALUE...] (download.KEY)"
    )
    parser.add_argument("--spy", type=Path, help="a folder for py-spy's raw profiles")
    args = parser.parse_args()
    codes = dict(item.split("=", 1) for item in args.code) or {"this": str(ROOT)}
    result = {
        "machine": machine(),
        **{
            profile: measure(profile, args.runs, args.size, codes, args.spy)
            for profile in args.profile.split(",")
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
