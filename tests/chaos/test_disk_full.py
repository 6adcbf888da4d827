"""The store's filesystem fills up in the middle of a download (a size-limited tmpfs, as root).

Promised: a clear insufficient-space error naming the cause, no partial entry that looks ready
and no temp file holding on to the little space left, the daemon still serving what it has,
and once space is freed the same resource downloading fine.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.cli.client import ApiError
from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub

MB = 1024 * 1024


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(ballast: Path, leave: int) -> None:
    """Write zeros until the filesystem has about `leave` bytes free (tmpfs takes written
    pages for real), or it is full: the download keeps writing meanwhile."""
    with open(ballast, "wb", buffering=0) as out:
        while shutil.disk_usage(ballast.parent).free > leave:
            try:
                out.write(b"\0" * MB)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return


def wait_for(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def test_a_disk_that_fills_mid_download(
    tmp_path: Path, small_filesystem: Path, hub: FakeHub
) -> None:
    kept = Content.generated(8 * MB, seed=9501)
    big = Content.generated(24 * MB, seed=9502)
    hub.commit("chaos/kept", {"k.safetensors": kept})
    hub.commit("chaos/big", {"b.safetensors": big})
    # The content host holds the body after 8 MiB until the disk is full: the order is
    # explicit (download started, disk filled, download goes on), whatever the machine's speed.
    release = threading.Event()
    hub.set_faults(big, Faults(hold_after=8 * MB, hold=release))
    config = {
        "store": {"path": str(small_filesystem / "store"), "min_free": "0"},
        "download": {"part_size": "64MiB"},
    }
    daemon = DaemonProcess(tmp_path, config, env={"HF_ENDPOINT": hub.url}).start()
    try:
        client = daemon.client()
        ready = client.request(
            "POST", "/v1/resources", body={"type": "HF", "repo": "chaos/kept"}, params={"wait": 1}
        )
        assert ready["state"] == "ready"
        started = client.request("POST", "/v1/resources", body={"type": "HF", "repo": "chaos/big"})

        def halfway() -> bool:
            # Held at 8 MiB; the daemon writes in buffers of up to half a MiB, so at least
            # 7.5 MiB of what it received is on disk while the body is held.
            entry = client.get(f"/v1/resources/{started['id']}")
            return bool(entry["progress"]["bytes_done"] >= 7 * MB)

        wait_for(halfway)
        ballast = small_filesystem / "ballast"
        fill(ballast, leave=2 * MB)
        release.set()

        def settled() -> bool:
            return bool(client.get(f"/v1/resources/{started['id']}")["state"] != "downloading")

        wait_for(settled)
        failed = client.get(f"/v1/resources/{started['id']}")
        assert failed["state"] in ("failed", "pending"), failed
        assert "filled up while writing b.safetensors" in (failed["error"] or ""), failed
        assert failed["path"] is None or not Path(failed["path"]).exists()
        tmp_files = list((small_filesystem / "store/tmp").iterdir())
        assert sum(p.stat().st_size for p in tmp_files) == 0, tmp_files

        # Still serving: health, status, and the entry it has, as a hit.
        assert client.get("/healthz")
        again = client.request(
            "POST", "/v1/resources", body={"type": "HF", "repo": "chaos/kept"}, params={"wait": 1}
        )
        assert again["state"] == "ready"
        assert (Path(again["path"]) / "k.safetensors").read_bytes() == kept.read()
        # Dropping the half file gave its space back (how much depends on how far the
        # download got): the disk is still nearly full only if something else takes it.
        topping = small_filesystem / "ballast-2"
        fill(topping, leave=2 * MB)
        with pytest.raises(ApiError) as refused:
            client.request(
                "POST",
                "/v1/resources",
                body={"type": "HF", "repo": "chaos/big"},
                params={"wait": 1},
            )
        assert refused.value.status == 507, refused.value.problem

        os.unlink(ballast)
        os.unlink(topping)
        fine = client.request(
            "POST", "/v1/resources", body={"type": "HF", "repo": "chaos/big"}, params={"wait": 1}
        )
        assert fine["state"] == "ready"
        assert (Path(fine["path"]) / "b.safetensors").read_bytes() == big.read()
        verified = client.request("POST", "/v1/verify")
        assert verified["corrupt"] == []
    finally:
        assert daemon.stop() == 0
