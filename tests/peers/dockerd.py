"""A private Docker engine: its own socket, data-root and exec-root, pulling through a mirror.

Started once per test session (it takes a few seconds). `--registry-mirror` points Docker Hub
names (`ubuntu`, `docker.io/...`) at the test registry, so the seed's example job runs
unchanged without internet.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import docker
import docker.errors

from .procs import start, stop, wait_until


class DockerPeer:
    def __init__(self, *, mirror: str | None = None, options: list[str] | None = None) -> None:
        # Unix socket paths are limited to 108 bytes: keep the root short.
        self.root = Path(tempfile.mkdtemp(prefix="ncd-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.mirror = mirror
        self.options = options or []
        """More of dockerd's command-line options (`--bridge=none`)."""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> DockerPeer:
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
        cmd = [
            "dockerd",
            "--host",
            self.host,
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.root / "docker.pid"),
            "--log-level",
            "warn",
        ]
        if self.mirror:
            cmd += ["--registry-mirror", self.mirror]
        cmd += self.options
        log = self.root / "dockerd.log"
        self._process = start(cmd, log)
        wait_until(lambda: self.client().ping(), 60, "dockerd", log)
        return self

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, version="auto", timeout=120)

    def daemon_config(self, registry_host: str) -> dict[str, dict[str, Any]]:
        """The daemon's `[docker]` for this engine, pulls named through the test registry by
        the daemon itself: an engine whose pull from its own mirror is cut short falls back
        to Docker Hub, and nothing may leave loopback."""
        mirrors = {"docker.io": registry_host}
        return {"docker": {"host": self.host, "gpu": "none", "registry_mirrors": mirrors}}

    def forget_images(self) -> None:
        """Remove every image (and stopped container): an engine that has pulled nothing, so
        that what a pull takes, and from where, does not depend on earlier tests."""
        client = self.client()
        try:
            for container in client.containers.list(all=True, filters={"status": "exited"}):
                container.remove(force=True)
            for image in client.images.list(all=True):
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(image.id, force=True)
            client.images.prune(filters={"dangling": False})
        finally:
            client.close()

    def restart(self) -> None:
        """Stop the engine the way an upgrade or a crash does (its containers die with it;
        there is no live-restore here) and start it again on the same data."""
        assert self._process is not None
        stop(self._process, timeout=30)
        self.start()

    def stop(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(Exception):
            client = self.client()
            for container in client.containers.list(all=True):
                container.remove(force=True)
            # The engine leaves its networks' Linux bridges behind when it stops: each holds
            # an address pool, and a host that ran enough test sessions would have none left.
            client.networks.prune()
            client.close()
        stop(self._process, timeout=30)
        subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
