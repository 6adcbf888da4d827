"""Soak: a stream of jobs, some sharing resources, with lives of seconds, so entries expire
and are evicted while others are leased, under a store cap that forces evictions for space.

Promised: no job ever sees a missing or wrong file (each checks every byte it was given), the
store stays under `store.max_size`, and the daemon's memory and open descriptors stay flat.
`SOAK_SECONDS` sets the length (default 60).
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.peers.dockerd import DockerPeer
from tests.peers.registry import RegistryPeer

MB = 1024 * 1024
SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
IN_FLIGHT = 3
MAX_SIZE = 24 * MB


def repos(hub: FakeHub) -> dict[str, dict[str, str]]:
    """Six repos of ~3 MiB; three share a file. Returns repo → {path: sha256}."""
    shared = Content.generated(MB, seed=9800)
    found = {}
    for i in range(6):
        files: dict[str, bytes | Content] = {
            "w.safetensors": Content.generated(2 * MB, seed=9810 + i),
            "config.json": f'{{"repo": {i}}}'.encode(),
        }
        if i % 2 == 0:
            files["shared.safetensors"] = shared
        hub.commit(f"soak/r{i}", files)
        found[f"soak/r{i}"] = {
            path: hashlib.sha256(c.read() if isinstance(c, Content) else c).hexdigest()
            for path, c in files.items()
        }
    return found


def sample(daemon: DaemonProcess) -> tuple[int, int]:
    """(resident KiB, open descriptors) of the daemon."""
    assert daemon.process is not None
    pid = daemon.process.pid
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def test_a_stream_of_jobs_under_expiry_and_a_cap(
    tmp_path: Path,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    hub: FakeHub,
    rng: random.Random,
) -> None:
    digests = repos(hub)
    names = sorted(digests)
    config = docker_peer.daemon_config(registry.host)
    config["store"] = {"ttl": "3s", "sweep_interval": "1s", "max_size": "24MiB", "min_free": "0"}
    daemon = DaemonProcess(tmp_path, config, env={"HF_ENDPOINT": hub.url}).start()
    samples: list[tuple[float, int, int]] = []
    usage: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        client = daemon.client()
        while not stop.is_set():
            samples.append((time.monotonic(), *sample(daemon)))
            usage.append(client.get("/v1/status")["store"]["bytes_used"])
            stop.wait(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    outcomes: dict[str, int] = {}
    checked_files = 0
    try:
        client = daemon.client()
        running: dict[str, list[str]] = {}
        started = time.monotonic()
        while time.monotonic() - started < SECONDS or running:
            while len(running) < IN_FLIGHT and time.monotonic() - started < SECONDS:
                chosen = rng.sample(names, k=rng.choice([1, 1, 2]))
                resources = [
                    {"type": "HF", "repo": repo, "target": f"/r{i}"}
                    for i, repo in enumerate(chosen)
                ]
                command = "sleep 0.3; cd / && sha256sum r*/* && sleep 0.3"
                body = {
                    "version": "0.1",
                    "type": "container",
                    "ops": [
                        {
                            "type": "container/run",
                            "id": "check",
                            "args": {"image": "ubuntu", "cmd": command, "resources": resources},
                        }
                    ],
                }
                record = client.request("POST", "/v1/jobs", body=body)
                running[record["id"]] = chosen
            for job_id, chosen in list(running.items()):
                record = client.get(f"/v1/jobs/{job_id}")
                if record["state"] not in ("completed", "failed", "stopped"):
                    continue
                del running[job_id]
                outcomes[record["state"]] = outcomes.get(record["state"], 0) + 1
                assert record["state"] == "completed", record
                output = daemon.job_logs(job_id, "check").encode()
                seen = {
                    path: digest
                    for digest, path in (line.split() for line in output.decode().splitlines())
                }
                expected = {
                    f"r{i}/{path}": digest
                    for i, repo in enumerate(chosen)
                    for path, digest in digests[repo].items()
                }
                assert seen == expected, (job_id, chosen)
                checked_files += len(seen)
            time.sleep(0.1)
    finally:
        stop.set()
        watcher.join()
        assert daemon.stop() == 0

    evicted = daemon.log().count('"event": "entry.evicted"')
    assert evicted >= 10, "the soak did not evict: entries never expired under use"
    assert max(usage) <= MAX_SIZE, max(usage)
    warm = [s for s in samples if s[0] - samples[0][0] > 20]
    rss = [s[1] for s in warm]
    fds = [s[2] for s in warm]
    assert max(rss) - min(rss) < 40 * 1024, (min(rss), max(rss))
    assert max(fds) - min(fds) < 40, (min(fds), max(fds))
    print(
        f"soak: {sum(outcomes.values())} jobs {outcomes}, {checked_files} files checked, "
        f"{evicted} evictions, peak usage {max(usage) // MB} MiB of {MAX_SIZE // MB}, "
        f"RSS {min(rss) // 1024}-{max(rss) // 1024} MiB, fds {min(fds)}-{max(fds)}"
    )
