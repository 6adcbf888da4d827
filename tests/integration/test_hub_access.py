"""Gated and private repos through the endpoint: a cached file goes only to a request whose own
token upstream accepted for that repo; none and bad tokens get the Hub's refusals; the
operator's `huggingface.token` is never lent to a request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.peers.hf_clients import HfClient, clients

MB = 1024 * 1024
GATED = "hubtest/gated-model"
PRIVATE = "hubtest/private-model"
WEIGHTS = Content.generated(2 * MB, seed=500)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[DaemonProcess]:
    hub.commit(GATED, {"config.json": b"{}", "w.safetensors": WEIGHTS}, gated=True)
    hub.commit(PRIVATE, {"config.json": b'{"private": 1}'}, private=True)
    root = tmp_path_factory.mktemp("hub-access")
    config: dict[str, dict[str, Any]] = {
        # The operator's token is good upstream: were it lent, every request would pass.
        "huggingface": {"endpoint": hub.url, "token": hub.token, "access_ttl": "1h"},
        "docker": {"host": f"unix://{root}/none"},
        "download": {"max_retries": 1},
    }
    process = DaemonProcess(root, config).start()
    yield process
    assert process.stop() == 0


def fetch(daemon: DaemonProcess, repo: str, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{daemon.url}/hf/{repo}/resolve/main/{path}", headers=headers, timeout=60)


def test_a_gated_file_needs_a_token_upstream_accepts_even_once_cached(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    good = fetch(daemon, GATED, "w.safetensors", hub.token)
    assert good.status_code == 200
    assert good.content == WEIGHTS.read()
    none = fetch(daemon, GATED, "w.safetensors", None)
    assert (none.status_code, none.headers["X-Error-Code"]) == (401, "GatedRepo")
    bad = fetch(daemon, GATED, "w.safetensors", "hf_wrong")
    assert bad.status_code == 401
    assert "Invalid credentials" in bad.json()["error"]
    info = requests.get(f"{daemon.url}/hf/api/models/{GATED}", timeout=30)
    assert info.status_code == 200  # as on the Hub: a gated repo's card is public
    assert info.json()["gated"] == "manual"


def test_an_accepted_token_is_asked_about_once_per_access_ttl(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    fetch(daemon, GATED, "config.json", hub.token)
    asked = hub.traffic.total(f"HEAD /{GATED}/resolve/")
    for _ in range(5):
        assert fetch(daemon, GATED, "config.json", hub.token).status_code == 200
    assert hub.traffic.total(f"HEAD /{GATED}/resolve/") == asked
    assert fetch(daemon, GATED, "config.json", "hf_other").status_code == 401
    assert hub.traffic.total(f"HEAD /{GATED}/resolve/") == asked + 1  # a new token is asked


def test_a_private_repo_is_not_found_without_its_token(daemon: DaemonProcess, hub: FakeHub) -> None:
    assert fetch(daemon, PRIVATE, "config.json", hub.token).content == b'{"private": 1}'
    for token in (None, "hf_wrong"):
        refused = fetch(daemon, PRIVATE, "config.json", token)
        assert refused.status_code == 401, token
        info = requests.get(
            f"{daemon.url}/hf/api/models/{PRIVATE}",
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=30,
        )
        assert info.status_code == 401, token
    assert fetch(daemon, PRIVATE, "config.json", None).headers["X-Error-Code"] == "RepoNotFound"


@pytest.mark.parametrize("index", [0, 1], ids=["pinned", "old"])
def test_the_clients_raise_what_the_hub_makes_them_raise(
    daemon: DaemonProcess, hub: FakeHub, tmp_path: Path, index: int
) -> None:
    client: HfClient = clients()[index]
    endpoint = f"{daemon.url}/hf"
    op = {"op": "download", "repo": GATED, "filename": "w.safetensors"}
    assert client.run(endpoint, tmp_path / "a", **op)["error"] == "GatedRepoError"
    assert client.run(endpoint, tmp_path / "b", **op, token=hub.token)["sha256"] == WEIGHTS.sha256
    private = {"op": "download", "repo": PRIVATE, "filename": "config.json"}
    assert client.run(endpoint, tmp_path / "c", **private)["error"] == "RepositoryNotFoundError"


def test_the_operators_token_never_reaches_upstream_for_a_request(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    hub.commit("hubtest/public-model", {"config.json": b"{}"})
    start = len(hub.traffic.authorizations)
    assert fetch(daemon, "hubtest/public-model", "config.json", None).status_code == 200
    assert not any(hub.traffic.authorizations[start:])


def test_asking_for_a_missing_file_first_does_not_lock_a_good_token_out(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    hub.commit("hubtest/gated-second", {"config.json": b"{}"}, gated=True)
    missing = fetch(daemon, "hubtest/gated-second", "absent.bin", hub.token)
    assert (missing.status_code, missing.headers["X-Error-Code"]) == (404, "EntryNotFound")
    assert fetch(daemon, "hubtest/gated-second", "config.json", hub.token).content == b"{}"
