"""llama.cpp's `-hf org/repo[:quant]` through the daemon's `/hf`, its requests replayed from its
source (no build of it ships in Debian or as a wheel without a compiler): the paths it asks
under `MODEL_ENDPOINT` (what job containers get), its `User-Agent: llama-cpp/<build>` and
`Accept: application/json`, and the JSON fields it reads.

- Current builds (common/hf-cache.cpp, common/download.cpp): `GET api/models/{repo}/refs`,
  the `main` branch's `targetCommit`; `GET api/models/{repo}/tree/{commit}?recursive=true`,
  files' `path` and `lfs.oid` or `oid`; the file it picks itself; `HEAD` then `GET
  {repo}/resolve/{commit}/{path}` (a 2xx HEAD with `ETag`, `Content-Length`, `Accept-Ranges`;
  a resumed GET with `Range` must be a 206).
- Older builds (common/arg.cpp `common_get_hf_file`): `GET v2/{repo}/manifests/{tag}` (tag
  `latest` when none), `ggufFile.rfilename` and `mmprojFile.rfilename`, then `GET
  {repo}/resolve/main/{file}`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from daemon.jobs.hub_env import hub_variables
from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub

MB = 1024 * 1024
REPO = "hubtest/tiny-GGUF"
FILES = {
    "README.md": Content.of(b"# tiny\n"),
    "tiny-Q2_K-00001-of-00002.gguf": Content.generated(MB, seed=910),
    "tiny-Q2_K-00002-of-00002.gguf": Content.generated(MB, seed=911),
    "tiny-Q4_K_M.gguf": Content.generated(2 * MB + 3, seed=912),
    "tiny-Q8_0.gguf": Content.generated(MB + 5, seed=913),
    "mmproj-tiny-f16.gguf": Content.generated(MB // 2, seed=914),
    "mmproj-tiny-Q8_0.gguf": Content.generated(MB // 4, seed=915),
}
HEADERS = {"User-Agent": "llama-cpp/b7123-abcdef0", "Accept": "application/json"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[DaemonProcess]:
    hub.commit(REPO, dict(FILES))
    root = tmp_path_factory.mktemp("hub-llama-cpp")
    config = {"huggingface": {"endpoint": hub.url}, "docker": {"host": f"unix://{root}/none"}}
    process = DaemonProcess(root, config).start()
    yield process
    assert process.stop() == 0


def endpoint(daemon: DaemonProcess) -> str:
    """`common_get_model_endpoint()`: MODEL_ENDPOINT, with a `/` added when it lacks one."""
    value = hub_variables(f"{daemon.url}/hf")["MODEL_ENDPOINT"]
    return value if value.endswith("/") else value + "/"


def api_get(url: str) -> Any:
    response = requests.get(url, headers=HEADERS, timeout=30)
    assert response.status_code == 200, (url, response.status_code, response.text)
    return response.json()


def download(url: str, expected: Content) -> None:
    """`common_download_file_single_online`: HEAD (2xx, its ETag and length), then GET; and a
    resumed GET from the middle, as after a dropped connection."""
    head = requests.head(url, headers={"User-Agent": HEADERS["User-Agent"]}, timeout=30)
    assert 200 <= head.status_code < 300, (url, head.status_code)
    assert head.headers["ETag"]
    assert int(head.headers["Content-Length"]) == expected.size
    assert head.headers.get("Accept-Ranges", "none") != "none"
    whole = requests.get(url, headers={"User-Agent": HEADERS["User-Agent"]}, timeout=60)
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).hexdigest() == expected.sha256
    half = expected.size // 2
    rest = requests.get(
        url, headers={"User-Agent": HEADERS["User-Agent"], "Range": f"bytes={half}-"}, timeout=60
    )
    assert rest.status_code == 206
    assert hashlib.sha256(whole.content[:half] + rest.content).hexdigest() == expected.sha256


def test_a_current_build_resolves_main_lists_the_tree_and_downloads(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    base = endpoint(daemon)
    refs = api_get(f"{base}api/models/{REPO}/refs")
    main = next(b for b in refs["branches"] if b["name"] == "main")
    assert main["targetCommit"] == hub.repos[REPO].refs["main"]
    assert re.fullmatch(r"[0-9a-f]{40}", main["targetCommit"])
    commit = main["targetCommit"]
    tree = api_get(f"{base}api/models/{REPO}/tree/{commit}?recursive=true")
    oids = {
        item["path"]: (item.get("lfs") or {}).get("oid") or item["oid"]
        for item in tree
        if item["type"] == "file"
    }
    assert set(oids) == set(FILES)
    assert oids["tiny-Q4_K_M.gguf"] == FILES["tiny-Q4_K_M.gguf"].sha256  # its blob's name
    for path in ("tiny-Q4_K_M.gguf", "mmproj-tiny-f16.gguf"):  # -hf's default and projector
        download(f"{base}{REPO}/resolve/{commit}/{path}", FILES[path])


@pytest.mark.parametrize(
    ("tag", "model", "projector"),
    [
        ("latest", "tiny-Q4_K_M.gguf", "mmproj-tiny-Q8_0.gguf"),  # 4 bits: nearer 8 than 16
        ("", "tiny-Q4_K_M.gguf", "mmproj-tiny-Q8_0.gguf"),  # a build that sends no tag
        ("q8_0", "tiny-Q8_0.gguf", "mmproj-tiny-Q8_0.gguf"),  # any case
        ("Q2_K", "tiny-Q2_K-00001-of-00002.gguf", "mmproj-tiny-Q8_0.gguf"),  # the first part
    ],
)
def test_an_older_builds_manifest_names_the_file_of_the_tag(
    daemon: DaemonProcess, tag: str, model: str, projector: str
) -> None:
    base = endpoint(daemon)
    manifest = api_get(f"{base}v2/{REPO}/manifests/{tag}")
    assert manifest["ggufFile"]["rfilename"] == model
    assert manifest["ggufFile"]["size"] == FILES[model].size
    assert manifest["mmprojFile"]["rfilename"] == projector
    download(f"{base}{REPO}/resolve/main/{model}", FILES[model])


def test_a_tag_the_repo_lacks_is_refused_with_the_tags_it_has(daemon: DaemonProcess) -> None:
    response = requests.get(
        f"{endpoint(daemon)}v2/{REPO}/manifests/Q5_K_S", headers=HEADERS, timeout=30
    )
    assert response.status_code == 400
    message = response.json()["error"]
    assert all(tag in message for tag in ("Q5_K_S", "Q4_K_M", "Q8_0")), message


def test_a_second_run_asks_upstream_nothing(daemon: DaemonProcess, hub: FakeHub) -> None:
    base = endpoint(daemon)
    api_get(f"{base}v2/{REPO}/manifests/latest")
    commit = api_get(f"{base}api/models/{REPO}/refs")["branches"][0]["targetCommit"]
    download(f"{base}{REPO}/resolve/{commit}/tiny-Q8_0.gguf", FILES["tiny-Q8_0.gguf"])
    before = (hub.traffic.total(), hub.cdn_traffic.total())
    api_get(f"{base}api/models/{REPO}/refs")
    api_get(f"{base}api/models/{REPO}/tree/{commit}?recursive=true")
    api_get(f"{base}v2/{REPO}/manifests/Q8_0")
    download(f"{base}{REPO}/resolve/{commit}/tiny-Q8_0.gguf", FILES["tiny-Q8_0.gguf"])
    assert (hub.traffic.total(), hub.cdn_traffic.total()) == before
