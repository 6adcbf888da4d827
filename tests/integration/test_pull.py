"""Pulling resources through the real daemon: HTTP API, CLI, restarts and memory."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.cli.client import ApiError
from daemon.settings import DownloadSettings
from daemon.sources.transfer import MEMORY_PER_CONNECTION
from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub

MB = 1024 * 1024


def hub_daemon(
    tmp_path: Path,
    hub: FakeHub,
    port: int | None = None,
    config: dict[str, dict[str, object]] | None = None,
) -> DaemonProcess:
    return DaemonProcess(tmp_path, config, env={"HF_ENDPOINT": hub.url}, port=port)


def test_pull_with_the_cli_and_the_api(tmp_path: Path, hub: FakeHub) -> None:
    weights = Content.generated(3 * MB, seed=101)
    hub.commit("cli/model", {"w.safetensors": weights, "config.json": b"{}"})
    daemon = hub_daemon(tmp_path, hub).start()
    try:
        spec = tmp_path / "model.json"
        spec.write_text(json.dumps({"type": "HF", "repo": "cli/model"}))
        pulled = daemon.cli("resources", "pull", str(spec))
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stdout.startswith("ready: hf://cli/model@main")
        entries = daemon.client().get("/v1/resources")["resources"]
        assert [e["state"] for e in entries] == ["ready"]
        view = Path(entries[0]["path"])
        assert (view / "w.safetensors").read_bytes() == weights.read()

        again = daemon.client().request(
            "POST", "/v1/resources", body={"type": "HF", "repo": "cli/model"}
        )
        assert again["id"] == entries[0]["id"]
        assert again["state"] == "ready"

        missing = daemon.cli("resources", "pull", "-", "--json")
        assert missing.returncode == 2  # stdin is empty: not JSON, a usage error

        spec.write_text(json.dumps({"type": "HF", "repo": "cli/absent"}))
        absent = daemon.cli("resources", "pull", str(spec))
        assert absent.returncode == 1
        assert "hf://cli/absent: no such repo" in absent.stderr
    finally:
        assert daemon.stop() == 0


def test_invalid_resources_are_400_with_every_location(tmp_path: Path, hub: FakeHub) -> None:
    daemon = hub_daemon(tmp_path, hub).start()
    try:
        with pytest.raises(ApiError) as caught:
            daemon.client().request(
                "POST",
                "/v1/resources",
                body={"type": "HF", "repo": "../etc", "files": ["../x"], "colour": 1},
            )
        assert caught.value.status == 400
        locations = {e["loc"] for e in caught.value.problem["errors"]}
        assert locations == {"repo", "files[0]", "colour"}
        with pytest.raises(ApiError) as wrong_type:
            daemon.client().request("POST", "/v1/resources", body={"type": "FTP"})
        assert (
            wrong_type.value.problem["errors"][0]["msg"] == "`type` must be one of HF, S3, Ollama"
        )
        with pytest.raises(ApiError) as not_json:
            daemon.client().request("POST", "/v1/resources", body="{")
        assert not_json.value.status == 400
    finally:
        daemon.stop()


def test_a_download_killed_with_the_daemon_resumes_after_restart(
    tmp_path: Path, hub: FakeHub
) -> None:
    weights = Content.generated(40 * MB, seed=102)
    hub.commit("resume/model", {"w.safetensors": weights})
    # The content host slows down after 20 MiB: the daemon is killed while it waits.
    hub.set_faults(weights, Faults(stall_after=20 * MB, stall_seconds=30, stall_times=1))
    config: dict[str, dict[str, object]] = {"download": {"part_size": "64MiB"}}
    daemon = hub_daemon(tmp_path, hub, config=config).start()
    accepted = daemon.client().request(
        "POST", "/v1/resources", body={"type": "HF", "repo": "resume/model"}
    )
    assert accepted["state"] == "downloading"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entry = daemon.client().get(f"/v1/resources/{accepted['id']}")
        if entry["progress"]["bytes_done"] >= 16 * MB:
            break
        time.sleep(0.1)
    time.sleep(2.5)  # the daemon records a resumable download's progress every 2 s
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    first_ranges = len(hub.cdn_traffic.ranges)

    restarted = hub_daemon(tmp_path, hub, port=daemon.port, config=config).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            entry = restarted.client().get(f"/v1/resources/{accepted['id']}")
            if entry["state"] == "ready":
                break
            time.sleep(0.2)
        assert entry["state"] == "ready", entry
        assert (Path(entry["path"]) / "w.safetensors").read_bytes() == weights.read()
        resumed = [r for p, r in hub.cdn_traffic.ranges[first_ranges:] if weights.sha256 in p]
        start = int(resumed[0].removeprefix("bytes=").split("-")[0])
        assert start >= 16 * MB, resumed  # never from zero
        assert "fetch.resuming" in restarted.log()
    finally:
        restarted.stop()


@pytest.mark.slow
def test_a_large_file_downloads_in_bounded_memory(tmp_path: Path, hub: FakeHub) -> None:
    """What the download adds to the daemon's memory at its peak, not the daemon's whole peak
    RSS: that counts what the machine's Python and libraries take (file pages, first imports),
    which differs from one machine to the next."""
    big = Content.generated(1024 * MB + 7, seed=103)
    hub.commit("big/model", {"w.safetensors": big})
    hub.commit("big/warm-up", {"w.safetensors": Content.generated(MB, seed=104)})
    _ = big.sha256  # computed before the daemon starts, so it is not timed with it
    daemon = hub_daemon(tmp_path, hub).start()
    try:
        assert daemon.process is not None
        proc = Path(f"/proc/{daemon.process.pid}")

        def pull(repo: str) -> dict[str, Any]:
            body = {"type": "HF", "repo": repo}
            entry: dict[str, Any] = daemon.client().request(
                "POST", "/v1/resources", body=body, params={"wait": True}, timeout=600
            )
            assert entry["state"] == "ready"
            return entry

        pull("big/warm-up")  # what a first HF download loads (huggingface_hub) is not its cost
        (proc / "clear_refs").write_text("5")  # VmHWM starts again from the RSS of now
        before = memory(proc)
        entry = pull("big/model")
        after = memory(proc)
        grew = after["VmHWM"] - before["VmRSS"] - max(0, files(after) - files(before))
        # The design's bound per connection, doubled for what the allocator keeps in its free
        # lists, for every connection, and 16 MiB for the rest (the hash's read-back, threads).
        bound = DownloadSettings().concurrency * 2 * MEMORY_PER_CONNECTION + 16 * MB
        assert grew < bound, f"the download took {grew // MB} MiB, more than {bound // MB}"
        assert os.path.getsize(Path(entry["path"]) / "w.safetensors") == big.size
    finally:
        daemon.stop()


def memory(proc: Path) -> dict[str, int]:
    """The memory fields of /proc/PID/status, in bytes."""
    fields = {}
    for line in (proc / "status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssFile", "RssShmem"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def files(fields: dict[str, int]) -> int:
    """File-backed and shared pages: the libraries' and Python's, not the download's."""
    return fields["RssFile"] + fields["RssShmem"]
