"""The real daemon as a subprocess (`python -m daemon serve`), the way operators run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from daemon.cli.client import ApiError, Client, DaemonUnreachable
from tests.peers.procs import free_port


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(config: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


class DaemonProcess:
    def __init__(
        self,
        root: Path,
        config: dict[str, dict[str, Any]] | None = None,
        *,
        env: dict[str, str] | None = None,
        use_config_file: bool = True,
        port: int | None = None,
        wrapper: list[str] | None = None,
    ) -> None:
        self.root = root
        self.wrapper = wrapper or []
        """A command the daemon and its CLI run under (`setpriv` dropping a capability)."""
        self.port = port or free_port()
        self.config: dict[str, dict[str, Any]] = {
            "store": {"path": str(root / "store")},
            "api": {"listen": [f"127.0.0.1:{self.port}"]},
            # Test daemons share the engines' docker0: never fight over one port.
            "huggingface": {"mirror_port": 0},
            # Nor over the registry endpoint's port (status says where it is). Not port 0: it
            # binds before the API, and the OS may hand it the API's port picked above (seen).
            "registry": {"listen": f"127.0.0.1:{_other_free_port(self.port)}"},
            # The fence changes the host's firewall: only tests/integration/test_fence.py
            # puts it up (and takes it down again).
            "docker": {"fence": "off"},
        }
        for section, values in (config or {}).items():
            self.config.setdefault(section, {}).update(values)
        self.config_path = root / "nosana-cache.toml"
        self.log_path = root / "daemon.log"
        self.env = {**os.environ, "HOME": str(root), "XDG_CACHE_HOME": str(root / "cache")}
        self.env.pop("DOCKER_HOST", None)
        self.env.update(env or {})
        self.use_config_file = use_config_file
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self, *args: str) -> list[str]:
        config = ["--config", str(self.config_path)] if self.use_config_file else []
        return [*self.wrapper, sys.executable, "-m", "daemon", *config, *args]

    def start(self, *, wait: bool = True) -> DaemonProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(to_toml(self.config))
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            self.command("serve"), stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        client = Client(self.url, timeout=2)
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
            try:
                client.get("/healthz")
                return
            except (DaemonUnreachable, ApiError):
                time.sleep(0.05)
        raise TimeoutError(f"daemon did not answer /healthz in {timeout}s:\n{self.log()}")

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token=token)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, env=self.env, timeout=timeout
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        """The job's record once it has ended (completed, failed or stopped)."""
        deadline = time.monotonic() + timeout
        while True:
            record: dict[str, Any] = self.client().get(f"/v1/jobs/{job_id}")
            if record["state"] in ("completed", "failed", "stopped"):
                return record
            assert time.monotonic() < deadline, record
            time.sleep(0.1)

    def job_logs(self, job_id: str, op: str | None = None, stream: str | None = None) -> str:
        response = self.client()._send(
            "GET", f"/v1/jobs/{job_id}/logs", params={"op": op, "stream": stream}
        )
        return str(response.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _other_free_port(taken: int) -> int:
    """A free port that is not `taken` (the API's, picked but not yet bound)."""
    while (port := free_port()) == taken:
        pass
    return port
