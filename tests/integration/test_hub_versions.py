"""The huggingface_hub versions job images ship (0.24, 0.31, 0.36, 1.x and the pinned newest),
with Xet on as they have it, and transformers, download through the daemon's `/hf` what the
upstream Hub has; and a model cache that a download straight from the Hub left with Xet hashes
in its tree listing (hub >= 1.22 reads Xet metadata from it instead of asking HEAD) downloads
over plain HTTP through the variables job containers get, asking no Xet host anything.

The clients run on the host with exactly the variables the daemon injects into job containers
(`daemon.jobs.hub_env.hub_variables`); test_hub_containers.py checks a container gets them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.jobs.hub_env import hub_variables
from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.peers.hf_clients import TRANSFORMERS, VENVS, HfClient, client, pinned

MB = 1024 * 1024
MODEL = "hubtest/versions-model"
XET_MODEL = "hubtest/xet-model"
CONFIG = {"model_type": "llama", "hidden_size": 64, "architectures": ["LlamaForCausalLM"]}


def files() -> dict[str, bytes | Content]:
    return {
        "config.json": json.dumps(CONFIG).encode(),
        "tokenizer.json": b'{"version": "1.0"}' * 300,
        "model.safetensors": Content.generated(3 * MB + 11, seed=900),
        "extra/notes.txt": b"notes\n",
    }


def sha256s(given: dict[str, bytes | Content]) -> dict[str, str]:
    return {p: (Content.of(d) if isinstance(d, bytes) else d).sha256 for p, d in given.items()}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[DaemonProcess]:
    hub.commit(MODEL, files())
    hub.commit(XET_MODEL, files(), xet=True)
    root = tmp_path_factory.mktemp("hub-versions")
    config = {"huggingface": {"endpoint": hub.url}, "docker": {"host": f"unix://{root}/none"}}
    process = DaemonProcess(root, config).start()
    yield process
    assert process.stop() == 0


@pytest.fixture(scope="module", params=["pinned", *(v.version for v in VENVS)])
def any_client(request: pytest.FixtureRequest) -> HfClient:
    return pinned() if request.param == "pinned" else client(request.param)


def through(daemon: DaemonProcess) -> tuple[str, dict[str, str]]:
    url = f"{daemon.url}/hf"
    return url, hub_variables(url)


def test_every_version_downloads_a_snapshot_and_a_file_as_upstream_has_them(
    any_client: HfClient, daemon: DaemonProcess, hub: FakeHub, tmp_path: Path
) -> None:
    url, env = through(daemon)
    snapshot = any_client.run_with(env, url, tmp_path / "a", {"op": "snapshot", "repo": MODEL})
    assert snapshot.get("files") == sha256s(files()), snapshot
    one = any_client.run_with(
        env, url, tmp_path / "b", {"op": "download", "repo": MODEL, "filename": "model.safetensors"}
    )
    assert one.get("sha256") == sha256s(files())["model.safetensors"], one
    # Xet on, as images have it: with no variable at all the answers still keep it off Xet.
    bare = any_client.run(url, tmp_path / "c", op="snapshot", repo=XET_MODEL)
    assert bare.get("files") == sha256s(files()), bare
    assert hub.cas_traffic.total() == 0


def test_transformers_reads_a_config_and_a_weights_file_through_the_endpoint(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    vllm = client("0.36.2")  # the venv with transformers
    url, env = through(daemon)
    config = vllm.run_with(env, url, tmp_path, {"op": "config", "repo": MODEL})
    assert config == {"model_type": "llama", "hidden_size": 64}, (TRANSFORMERS, config)
    weights = vllm.run_with(
        env, url, tmp_path, {"op": "weights", "repo": MODEL, "filename": "model.safetensors"}
    )
    assert weights.get("sha256") == sha256s(files())["model.safetensors"], weights


def xet_cache(hub: FakeHub, home: Path) -> Path:
    """A model cache as a job that reached the Hub itself leaves it, the files then gone (a
    later job asks for files it does not have): the tree listing with Xet hashes stays. The
    pinned client writes it (1.x writes the same format 1; 1.33 cannot download from the fake
    hub directly: it follows the LFS redirect to the content host, on the same host name here,
    and finds no `X-Repo-Commit` there)."""
    direct = pinned().run_with(
        {"HF_HUB_DISABLE_XET": "1"}, hub.url, home, {"op": "snapshot", "repo": XET_MODEL}
    )
    assert direct.get("files") == sha256s(files()), direct
    storage = home / "hub" / f"models--{XET_MODEL.replace('/', '--')}"
    (tree,) = (storage / "trees").glob("*.json")
    listed = json.loads(tree.read_text())["files"]
    assert listed["model.safetensors"].get("xet_hash"), listed  # as the client wrote it
    shutil.rmtree(storage / "snapshots")
    shutil.rmtree(storage / "blobs")
    return tree


@pytest.mark.parametrize("version", ["pinned", "1.33.0"])
def test_a_cache_with_xet_hashes_downloads_over_plain_http_with_the_injected_variables(
    version: str, daemon: DaemonProcess, hub: FakeHub, tmp_path: Path
) -> None:
    hub_client = pinned() if version == "pinned" else client(version)
    url, env = through(daemon)
    tree = xet_cache(hub, tmp_path / "home")
    before = hub.cas_traffic.total()
    again = hub_client.run_with(env, url, tmp_path / "home", {"op": "snapshot", "repo": XET_MODEL})
    assert again.get("files") == sha256s(files()), again
    assert tree.exists()  # it was there to be read: the variables, not its absence, did it
    # Without HF_HUB_DISABLE_XET (a client on the host that was not told), the client asks
    # for a Xet token: the answer says why not and what to set, and no Xet host is reached.
    shutil.rmtree(tree.parent.parent / "snapshots")
    shutil.rmtree(tree.parent.parent / "blobs")
    untold = {k: v for k, v in env.items() if k != "HF_HUB_DISABLE_XET"}
    refused = hub_client.run_with(
        untold, url, tmp_path / "home", {"op": "snapshot", "repo": XET_MODEL}
    )
    assert refused.get("status") == 501, refused
    assert "HF_HUB_DISABLE_XET=1" in refused["message"], refused
    assert hub.cas_traffic.total() == before == 0
    assert hub.traffic.total(f"GET /api/models/{XET_MODEL}/xet-read-token/") == 0
