"""A private containerd (Debian's 1.6, from docker.io's dependencies) and its `ctr`.

Its own root, state and socket, the CRI plugin off (nothing but images is asked of it): it
starts in about a second. `ctr` pulls with the native snapshotter (no mounts to undo).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .procs import start, stop, wait_until


class ContainerdPeer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ncc-", dir="/tmp"))
        self.socket = self.root / "containerd.sock"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ContainerdPeer:
        if shutil.which("containerd") is None or shutil.which("ctr") is None:
            raise RuntimeError("containerd is not installed (apt-get install docker.io)")
        config = self.root / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.root / "root"}"\n'
            f'state = "{self.root / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
        )
        log = self.root / "containerd.log"
        self._process = start(["containerd", "-c", str(config)], log)
        wait_until(lambda: self.ctr("version").returncode == 0, 30, "containerd", log)
        return self

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pull(self, reference: str, hosts_dir: Path) -> subprocess.CompletedProcess[str]:
        return self.ctr(
            "images", "pull", "--snapshotter", "native", "--hosts-dir", str(hosts_dir), reference
        )

    def digest(self, reference: str) -> str:
        """The image's target digest (its manifest, or index), as `ctr images ls` says."""
        listing = self.ctr("images", "ls")
        for line in listing.stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == reference:
                return next(f for f in fields if f.startswith("sha256:"))
        raise AssertionError(f"{reference} not in ctr images ls:\n{listing.stdout}")

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process)
        shutil.rmtree(self.root, ignore_errors=True)
