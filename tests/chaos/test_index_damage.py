"""The store's SQLite index truncated, overwritten or deleted while the daemon was down.

Promised: the daemon starts (a cache can start over), says loudly what it found and did, keeps
a damaged file for inspection, never serves an entry it can no longer vouch for, and fetches
afresh and correctly when asked again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub

MB = 1024 * 1024


def truncate_to_half(index: Path) -> None:
    os.truncate(index, index.stat().st_size // 2)


def truncate_to_header(index: Path) -> None:
    os.truncate(index, 50)


def overwrite_the_middle(index: Path) -> None:
    size = index.stat().st_size
    with open(index, "r+b") as damaged:
        damaged.seek(4096)  # page 2 on: the tables, not the header
        damaged.write(os.urandom(size - 4096))


def delete(index: Path) -> None:
    index.unlink()


def events(daemon: DaemonProcess) -> list[dict[str, object]]:
    found = []
    for line in daemon.log().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


@pytest.mark.parametrize(
    "damage", [truncate_to_half, truncate_to_header, overwrite_the_middle, delete]
)
def test_a_damaged_or_missing_index(
    tmp_path: Path, hub: FakeHub, damage: Callable[[Path], None]
) -> None:
    repo = f"chaos/index-{damage.__name__}"
    weights = Content.generated(3 * MB, seed=9600 + len(repo))
    hub.commit(repo, {"w.safetensors": weights, "config.json": b"{}"})
    env = {"HF_ENDPOINT": hub.url}
    daemon = DaemonProcess(tmp_path, env=env).start()
    client = daemon.client()
    first = client.request(
        "POST", "/v1/resources", body={"type": "HF", "repo": repo}, params={"wait": 1}
    )
    assert first["state"] == "ready"
    assert daemon.stop() == 0
    store = tmp_path / "store"
    damage(store / "index.sqlite")

    restarted = DaemonProcess(tmp_path, env=env, port=daemon.port).start()
    try:
        client = restarted.client()
        logged = {e["event"]: e for e in events(restarted)}
        if damage is delete:
            assert logged["store.index_missing"]["blobs_removed"] == 2
        else:
            report = logged["store.index_damaged"]
            assert "is damaged" in str(report["error"])
            assert Path(str(report["moved_to"])).exists()
        assert client.get("/v1/resources")["resources"] == []
        assert not Path(first["path"]).exists()
        assert [p for p in (store / "blobs").rglob("*") if p.is_file()] == []

        again = client.request(
            "POST", "/v1/resources", body={"type": "HF", "repo": repo}, params={"wait": 1}
        )
        assert again["state"] == "ready"
        assert (Path(again["path"]) / "w.safetensors").read_bytes() == weights.read()
    finally:
        assert restarted.stop() == 0
