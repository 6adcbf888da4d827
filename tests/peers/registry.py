"""The Distribution registry (`docker-registry`, 2.8) on a free loopback port, plain HTTP.

As a plain registry, a private one (basic auth), or a pull-through cache of another registry,
the last either from a config of its own or from the example the project ships
(config/registry-pull-through.yml, run as it is but for its folder, address and remote).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from .procs import free_port, start, stop, wait_until

PULL_THROUGH_EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "registry-pull-through.yml"


class RegistryPeer:
    def __init__(
        self,
        root: Path,
        *,
        proxy_of: str | None = None,
        users: dict[str, str] | None = None,
        example: Path | None = None,
    ) -> None:
        self.root = root
        self.users = users or {}
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.proxy_of = proxy_of
        self.example = example
        self._process: subprocess.Popen[bytes] | None = None

    def stored_all(self, upstream_requests: Mapping[str, int]) -> bool:
        """Whether this pull-through registry has stored every blob it fetched upstream (GETs
        in `upstream_requests`). It streams a blob to its client while storing it: a pull
        before the store has finished goes upstream again. A blob's `data` file appears only
        once it is complete."""
        blobs = self.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
        fetched = {
            key.rsplit("sha256:", 1)[1]
            for key in upstream_requests
            if key.startswith("GET ") and "/blobs/sha256:" in key
        }
        return all((blobs / hex_[:2] / hex_ / "data").exists() for hex_ in fetched)

    def start(self) -> RegistryPeer:
        if shutil.which("docker-registry") is None:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        self.root.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"delete": {"enabled": True}},
            "http": {},
        }
        if self.example is not None:
            config = yaml.safe_load(self.example.read_text())
        config["storage"]["filesystem"] = {"rootdirectory": str(self.root / "data")}
        config["http"]["addr"] = self.host
        if self.proxy_of:
            config.setdefault("proxy", {})["remoteurl"] = self.proxy_of
        if self.users:  # basic auth, as a private registry asks (bcrypt is all it accepts)
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{name}:{bcrypt.hashpw(secret.encode(), bcrypt.gensalt(4)).decode()}\n"
                    for name, secret in self.users.items()
                )
            )
            config["auth"] = {"htpasswd": {"realm": "test-registry", "path": str(htpasswd)}}
        # The registry reads YAML; JSON is YAML.
        (self.root / "config.yml").write_text(json.dumps(config))
        log = self.root / "registry.log"
        self._process = start(["docker-registry", "serve", str(self.root / "config.yml")], log)
        wait_until(self._answers, 30, "docker-registry", log)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=2) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError as error:
            return bool(self.users) and error.code == 401  # up, and asking who we are

    def catalog(self) -> list[str]:
        with urllib.request.urlopen(f"{self.url}/v2/_catalog", timeout=5) as response:
            return list(json.load(response)["repositories"])

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process)
