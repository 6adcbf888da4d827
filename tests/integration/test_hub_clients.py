"""huggingface_hub itself, the pinned version and an old 0.x, with `HF_ENDPOINT` at the daemon's
`/hf`: what it downloads, lists and raises is what it gets from the upstream Hub directly, and
a second download asks upstream nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.peers.hf_clients import HfClient, clients

MB = 1024 * 1024
MODEL = "hubtest/hub-model"
DATASET = "hubtest/hub-data"


def model_files() -> dict[str, bytes | Content]:
    return {
        "config.json": b'{"architectures": ["LlamaForCausalLM"]}',
        "tokenizer/tokenizer.json": b'{"version": "1.0"}' * 500,
        "tokenizer/special/tokens.txt": b"<s>\n</s>\n",
        "model-00001-of-00002.safetensors": Content.generated(5 * MB + 7, seed=300),
        "model-00002-of-00002.safetensors": Content.generated(2 * MB, seed=301),
        "README.md": b"# a model\n",
    }


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[DaemonProcess]:
    hub.commit(MODEL, model_files())
    hub.commit(
        DATASET,
        {"train/part-0.parquet": Content.generated(MB, seed=302), "x.csv": b"a,b\n"},
        lfs={"train/part-0.parquet"},
        repo_type="dataset",
    )
    root = tmp_path_factory.mktemp("hub-clients")
    config = {"huggingface": {"endpoint": hub.url}, "docker": {"host": f"unix://{root}/none"}}
    process = DaemonProcess(root, config).start()
    yield process
    assert process.stop() == 0


@pytest.fixture(scope="module", params=[0, 1], ids=["pinned", "old"])
def client(request: pytest.FixtureRequest) -> HfClient:
    index: int = request.param
    return clients()[index]


def both(
    client: HfClient, hub: FakeHub, daemon: DaemonProcess, home: Path, **op: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same operation straight from the upstream Hub, then through the daemon."""
    upstream = client.run(hub.url, home / "upstream", **op)
    through = client.run(f"{daemon.url}/hf", home / "daemon", **op)
    return upstream, through


def test_snapshot_download_gets_every_file_as_upstream_has_it(
    client: HfClient, hub: FakeHub, daemon: DaemonProcess, tmp_path: Path
) -> None:
    upstream, through = both(client, hub, daemon, tmp_path, op="snapshot", repo=MODEL)
    assert "error" not in through, through
    expected = {
        path: Content.of(data).sha256 if isinstance(data, bytes) else data.sha256
        for path, data in model_files().items()
    }
    assert through["files"] == upstream["files"] == expected


def test_a_second_download_asks_upstream_nothing(
    client: HfClient, hub: FakeHub, daemon: DaemonProcess, tmp_path: Path
) -> None:
    client.run(f"{daemon.url}/hf", tmp_path / "first", op="snapshot", repo=MODEL)
    hub_before, cdn_before = hub.traffic.total(), hub.cdn_traffic.total()
    again = client.run(f"{daemon.url}/hf", tmp_path / "second", op="snapshot", repo=MODEL)
    one = client.run(
        f"{daemon.url}/hf",
        tmp_path / "third",
        op="download",
        repo=MODEL,
        filename="model-00002-of-00002.safetensors",
    )
    assert len(again["files"]) == len(model_files())
    assert one["sha256"] == Content.generated(2 * MB, seed=301).sha256
    assert (hub.traffic.total(), hub.cdn_traffic.total()) == (hub_before, cdn_before)


@pytest.mark.parametrize(
    "op",
    [
        {"op": "info", "repo": MODEL},
        {"op": "info", "repo": MODEL, "blobs": True},
        {"op": "tree", "repo": MODEL},
        {"op": "tree", "repo": MODEL, "recursive": False},
        {"op": "tree", "repo": MODEL, "path": "tokenizer", "recursive": False},
        {"op": "paths", "repo": MODEL, "paths": ["tokenizer", "config.json", "absent.bin"]},
        {"op": "download", "repo": MODEL, "filename": "tokenizer/special/tokens.txt"},
        {"op": "snapshot", "repo": DATASET, "repo_type": "dataset"},
        {"op": "tree", "repo": DATASET, "repo_type": "dataset"},
    ],
    ids=lambda op: "-".join(str(v) for k, v in op.items() if k not in ("repo",)),
)
def test_answers_are_the_upstream_hubs(
    client: HfClient, hub: FakeHub, daemon: DaemonProcess, tmp_path: Path, op: dict[str, Any]
) -> None:
    upstream, through = both(client, hub, daemon, tmp_path, **op)
    assert "error" not in through, through
    through.pop("path", None)
    upstream.pop("path", None)
    assert through == upstream


@pytest.mark.parametrize(
    ("op", "raised"),
    [
        ({"op": "info", "repo": "hubtest/absent"}, "RepositoryNotFoundError"),
        ({"op": "download", "repo": "hubtest/absent", "filename": "a"}, "RepositoryNotFoundError"),
        ({"op": "info", "repo": MODEL, "revision": "v9"}, "RevisionNotFoundError"),
        (
            {"op": "download", "repo": MODEL, "filename": "x", "revision": "v9"},
            "RevisionNotFoundError",
        ),
        ({"op": "download", "repo": MODEL, "filename": "absent.bin"}, "EntryNotFoundError"),
        ({"op": "tree", "repo": MODEL, "path": "absent"}, "EntryNotFoundError"),
    ],
)
def test_errors_are_the_ones_the_hub_makes_the_client_raise(
    client: HfClient,
    hub: FakeHub,
    daemon: DaemonProcess,
    tmp_path: Path,
    op: dict[str, Any],
    raised: str,
) -> None:
    upstream, through = both(client, hub, daemon, tmp_path, **op)
    assert through["error"] == upstream["error"]
    assert raised in through["error"]  # RemoteEntryNotFoundError in 2.x
    assert through["status"] == upstream["status"]


def test_entries_made_through_the_endpoint_say_so(daemon: DaemonProcess) -> None:
    entries = daemon.client().get("/v1/resources")["resources"]
    ours = [e for e in entries if e["details"].get("repo") == MODEL]
    assert ours
    assert all(e["details"]["via"] == "/hf" for e in ours)
    revision = next(e for e in ours if e["details"].get("revision") == "main")
    assert revision["source"] == f"hf://{MODEL}@main (revision, via /hf)"
    weights = next(
        e for e in ours if e["details"].get("path") == "model-00002-of-00002.safetensors"
    )
    assert weights["state"] == "ready"
    assert weights["file_count"] == 1
    assert weights["source"].endswith("/model-00002-of-00002.safetensors (via /hf)")


def test_files_a_job_declared_are_not_fetched_again_through_the_endpoint(
    daemon: DaemonProcess, hub: FakeHub, tmp_path: Path
) -> None:
    weights = Content.generated(3 * MB, seed=303)
    hub.commit("hubtest/declared", {"w.safetensors": weights, "config.json": b'{"x": 1}'})
    resource = {"type": "HF", "repo": "hubtest/declared"}
    entry = daemon.client().request("POST", "/v1/resources", body=resource, params={"wait": True})
    assert entry["state"] == "ready"
    cdn, files = hub.cdn_traffic.total(), hub.traffic.total("GET /hubtest/declared/resolve/")
    pinned = clients()[0]
    got = pinned.run(f"{daemon.url}/hf", tmp_path, op="snapshot", repo="hubtest/declared")
    assert got["files"]["w.safetensors"] == weights.sha256
    assert hub.cdn_traffic.total() == cdn  # the LFS blob, by sha256
    assert hub.traffic.total("GET /hubtest/declared/resolve/") == files  # the git blob, by id
