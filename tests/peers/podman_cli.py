"""Debian's podman (4.3) as a command, rootful, on storage and config of its own: nothing global
changes. (tests/peers/podman.py is Podman as a service, on a socket, for the engine socket.)

Its own `--root`/`--runroot` (the vfs driver: no mounts to undo, the test images are small),
its own registries.conf (`CONTAINERS_REGISTRIES_CONF`, read instead of
/etc/containers/registries.conf and its drop-ins) and containers.conf (`CONTAINERS_CONF`: the
ulimits this sandbox's hard limits allow, TESTBED.md), no events written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]
"""


def mirror_conf(prefix: str, mirror: str) -> str:
    """One `[[registry]]` of registries.conf: `prefix` pulled through `mirror` (plain HTTP)."""
    return (
        f'[[registry]]\nprefix = "{prefix}"\nlocation = "{prefix}"\n'
        f'[[registry.mirror]]\nlocation = "{mirror}"\ninsecure = true\n'
    )


class PodmanCli:
    def __init__(self, registries_conf: str) -> None:
        if shutil.which("podman") is None:
            raise RuntimeError("podman is not installed (apt-get install podman)")
        self.root = Path(tempfile.mkdtemp(prefix="ncp-", dir="/tmp"))
        (self.root / "registries.conf").write_text(
            'unqualified-search-registries = []\nshort-name-mode = "disabled"\n\n' + registries_conf
        )
        (self.root / "containers.conf").write_text(CONTAINERS_CONF)
        self.env = {
            **os.environ,
            "CONTAINERS_REGISTRIES_CONF": str(self.root / "registries.conf"),
            "CONTAINERS_CONF": str(self.root / "containers.conf"),
            "TMPDIR": str(self.root),
        }

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [
            "podman",
            "--root", str(self.root / "storage"),
            "--runroot", str(self.root / "run"),
            "--storage-driver", "vfs",
            "--events-backend", "none",
            "--cgroup-manager", "cgroupfs",
            *args,
        ]  # fmt: skip
        return subprocess.run(
            command, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )

    def pull(self, reference: str) -> subprocess.CompletedProcess[str]:
        return self.run("pull", "--quiet", reference)

    def inspect(self, reference: str) -> dict[str, object]:
        done = self.run("image", "inspect", reference)
        assert done.returncode == 0, done.stderr
        found: list[dict[str, object]] = json.loads(done.stdout)
        return found[0]

    def stop(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
