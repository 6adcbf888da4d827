"""The global options typed after the command, as people type them, against the real daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.daemon_process import DaemonProcess, to_toml
from tests.peers.procs import free_port


class OptionsAfterTheCommand(DaemonProcess):
    """The same daemon and CLI, with `--config FILE` after the command instead of before."""

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "daemon", *args, "--config", str(self.config_path)]


def test_serve_and_client_commands_take_config_and_api_after_the_command(tmp_path: Path) -> None:
    no_docker = {"docker": {"host": f"unix://{tmp_path}/no-docker.sock"}}
    daemon = OptionsAfterTheCommand(tmp_path, no_docker).start()  # `serve --config FILE`
    # A config whose listener nobody serves: only an `--api` after the command reaches it.
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(to_toml({"api": {"listen": [f"127.0.0.1:{free_port()}"]}}))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "daemon", "--config", str(elsewhere), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=daemon.env, timeout=60)

    try:
        status = daemon.cli("status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["store"]["path"] == str(tmp_path / "store")
        shown = daemon.cli("config", "show")
        assert f'path = "{tmp_path / "store"}"' in shown.stdout

        assert run("status").returncode == 3
        listing = run("resources", "ls", "--api", daemon.url, "--json")
        assert listing.returncode == 0, listing.stderr
        assert json.loads(listing.stdout) == {"resources": []}

        job = tmp_path / "job.json"
        op = {"id": "hello", "type": "container/run", "args": {"image": "busybox"}}
        job.write_text(json.dumps({"version": "0.1", "type": "container", "ops": [op]}))
        submitted = run("jobs", "submit", str(job), "--api", daemon.url, "--follow")
        assert submitted.returncode == 1, submitted.stderr  # reached the daemon: no Docker there
        [record] = daemon.client().get("/v1/jobs")["jobs"]
        assert record["state"] == "failed"
    finally:
        assert daemon.stop() == 0
