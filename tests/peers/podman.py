"""A private rootful Podman service (`podman system service`) on a socket of its own.

Its storage (`--root`, `--runroot`) lives under a temporary folder; `CONTAINERS_CONF` names a
containers.conf with ulimits this sandbox allows (TESTBED.md: Podman's defaults are above the
hard limits, and every container would fail to start). Images come from `podman import` of
the busybox root filesystem: nothing is pulled.
"""

from __future__ import annotations

import os
import shutil
import socket as sockets
import subprocess
import tempfile
import urllib.error
from pathlib import Path

from .images import busybox_rootfs
from .procs import start, stop, wait_until

IMAGE = "localhost/busybox:latest"
CONF = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]\n'


class PodmanPeer:
    def __init__(self, *, insecure: tuple[str, ...] = ()) -> None:
        """`insecure`: plain-HTTP registries (`host:port`) it may pull from, such as the test
        registry (Podman, unlike Docker, trusts no loopback registry without TLS)."""
        self.root = Path(tempfile.mkdtemp(prefix="ncp-", dir="/tmp"))
        self.socket = self.root / "podman.sock"
        self.conf = self.root / "containers.conf"
        self.registries = self.root / "registries.conf"
        self.insecure = insecure
        self._process: subprocess.Popen[bytes] | None = None

    def _podman(self, *args: str) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.root / "root"),
            "--runroot",
            str(self.root / "run"),
            "--network-config-dir",  # the host's /etc/containers/networks stays untouched
            str(self.root / "networks"),
            *args,
        ]

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}
        if self.insecure:
            env["CONTAINERS_REGISTRIES_CONF"] = str(self.registries)
        return env

    def start(self) -> PodmanPeer:
        if shutil.which("podman") is None:
            raise RuntimeError("podman is not installed (apt-get install podman)")
        self.conf.write_text(CONF)
        self.registries.write_text(
            "".join(f'[[registry]]\nlocation = "{h}"\ninsecure = true\n' for h in self.insecure)
        )
        rootfs = self.root / "rootfs.tar"
        rootfs.write_bytes(busybox_rootfs())
        subprocess.run(
            self._podman("import", str(rootfs), IMAGE),
            check=True,
            capture_output=True,
            env=self._env(),
        )
        log = self.root / "podman.log"
        command = self._podman("system", "service", "--time=0", f"unix://{self.socket}")
        self._process = start(command, log, env=self._env())
        wait_until(self._answers, 60, "podman service", log)
        return self

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        probe = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
        try:
            probe.connect(str(self.socket))
            probe.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            return probe.recv(64).startswith(b"HTTP/1.1 200")
        except (OSError, urllib.error.URLError):
            return False
        finally:
            probe.close()

    def stop(self) -> None:
        if self._process is not None:
            subprocess.run(
                self._podman("rm", "-af"), capture_output=True, env=self._env(), check=False
            )
            subprocess.run(
                self._podman("network", "rm", "-f", "NOSANA_GATEWAY"),
                capture_output=True,
                env=self._env(),
                check=False,
            )
            stop(self._process, timeout=30)
        subprocess.run(["umount", "-R", str(self.root / "root")], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
