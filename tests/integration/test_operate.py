"""Operating the daemon: the systemd unit, the notify protocol, the CLI for scripts."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is needed (apt-get install systemd)"
    console_script = shutil.which("nosana-cache") or str(ROOT / ".venv" / "bin" / "nosana-cache")
    text = (ROOT / "systemd" / "nosana-cache.service").read_text()
    assert "Type=notify" in text
    assert "WatchdogSec=" in text
    assert "ExecStartPre=-+/usr/local/bin/nosana-cache fence --install" in text
    unit = tmp_path / "nosana-cache.service"
    unit.write_text(text.replace("/usr/local/bin/nosana-cache", console_script))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "nosana-cache.service" not in result.stderr  # no complaint about the unit itself


def test_ready_watchdog_and_stopping_over_notify_socket(tmp_path: Path) -> None:
    path = f"/tmp/notify-{tmp_path.name[-24:]}.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(10)
    daemon = DaemonProcess(tmp_path, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    try:
        daemon.start()
        messages: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum(m == "WATCHDOG=1" for m in messages) < 3:
            messages.append(receiver.recv(4096).decode())
        ready = [m for m in messages if m.startswith("READY=1")]
        assert ready
        assert "STATUS=serving on 127.0.0.1:" in ready[0]
        assert messages.count("WATCHDOG=1") >= 3  # every 0.2 s: half the watchdog period
        assert daemon.stop(signal.SIGTERM) == 0
        tail: list[str] = []
        try:
            while True:
                tail.append(receiver.recv(4096).decode())
        except TimeoutError:
            pass
        assert "STOPPING=1" in tail
    finally:
        receiver.close()
        Path(path).unlink(missing_ok=True)
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop()


@pytest.mark.parametrize(
    "command",
    [["status"], ["resources", "ls"], ["jobs", "ls"], ["gc"], ["verify"]],
)
def test_every_client_command_speaks_json_for_scripts(tmp_path: Path, command: list[str]) -> None:
    import json

    daemon = DaemonProcess(tmp_path).start()
    try:
        result = daemon.cli(*command, "--json")
        assert result.returncode == 0, result.stderr
        assert isinstance(json.loads(result.stdout), dict)
    finally:
        daemon.stop()


def test_shell_completion_script_and_answers() -> None:
    import os
    import sys

    script = subprocess.run(
        [sys.executable, "-m", "daemon", "completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "_NOSANA_CACHE_COMPLETE=bash_complete" in script.stdout
    answer = subprocess.run(
        [str(Path(sys.executable).parent / "nosana-cache")],
        env={
            **os.environ,
            "COMP_WORDS": "nosana-cache res",
            "COMP_CWORD": "1",
            "_NOSANA_CACHE_COMPLETE": "bash_complete",
        },
        capture_output=True,
        text=True,
    )
    assert "plain,resources" in answer.stdout.splitlines()


def test_help_has_examples() -> None:
    import sys

    for command in (["--help"], ["resources", "--help"], ["jobs", "--help"]):
        shown = subprocess.run(
            [sys.executable, "-m", "daemon", *command], capture_output=True, text=True, check=True
        )
        assert "Examples:" in shown.stdout
