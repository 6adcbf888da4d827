"""Helpers for peers that run as processes: free ports, waiting, and stopping for sure."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise TimeoutError(f"{what} did not come up within {timeout}s{tail}")


PEER_PIDS: set[int] = set()
"""Processes of session-wide peers: they outlive single tests on purpose."""


def start(cmd: list[str], log: Path, **kwargs: object) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 - the process owns it until it ends
    process: subprocess.Popen[bytes] = subprocess.Popen(
        cmd,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **kwargs,  # type: ignore[call-overload]
    )
    PEER_PIDS.add(process.pid)
    return process


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM the process group, then SIGKILL it if it does not go in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
