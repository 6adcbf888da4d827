"""The endpoint's file answers over plain HTTP: Range, bytes while the download is still held
upstream, one upstream fetch for concurrent readers, upstream down, corrupt upstream bytes."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub

MB = 1024 * 1024
REPO = "hubtest/serving"
BIG = Content.generated(32 * MB + 3, seed=400)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[DaemonProcess]:
    hub.commit(REPO, {"config.json": b'{"a": 1}', "small.safetensors": Content.generated(MB, 401)})
    root = tmp_path_factory.mktemp("hub-serving")
    config: dict[str, dict[str, Any]] = {
        "huggingface": {"endpoint": hub.url},
        "docker": {"host": f"unix://{root}/none"},
        # One request per file upstream, so a hold on its body holds the whole download.
        "download": {"part_size": "64MiB", "max_retries": 1, "stall_timeout": "60s"},
    }
    process = DaemonProcess(root, config).start()
    yield process
    assert process.stop() == 0


def url(daemon: DaemonProcess, path: str, repo: str = REPO, revision: str = "main") -> str:
    return f"{daemon.url}/hf/{repo}/resolve/{revision}/{path}"


def held(hub: FakeHub, repo: str, content: Content, after: int) -> threading.Event:
    """Commit `content` as `w.safetensors` of `repo`, its body held upstream after `after`
    bytes until the returned event is set."""
    release = threading.Event()
    hub.commit(repo, {"w.safetensors": content})
    hub.set_faults(content, Faults(hold_after=after, hold=release))
    return release


def test_range_answers_like_the_hubs_content_host(daemon: DaemonProcess) -> None:
    data = Content.generated(MB, 401).read()
    whole = requests.get(url(daemon, "small.safetensors"), timeout=30)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    for asked, start, end in (
        ("bytes=10-99", 10, 100),
        ("bytes=-10", MB - 10, MB),
        ("bytes=1000-", 1000, MB),
        ("bytes=0-0", 0, 1),
    ):
        part = requests.get(url(daemon, "small.safetensors"), headers={"Range": asked}, timeout=30)
        assert part.status_code == 206, asked
        assert part.content == data[start:end], asked
        assert part.headers["Content-Range"] == f"bytes {start}-{end - 1}/{MB}"
        assert "X-Repo-Commit" in part.headers  # TGI's client reads both from a 0-0 GET
    refused = requests.get(url(daemon, "small.safetensors"), headers={"Range": f"bytes={MB}-"})
    assert refused.status_code == 416
    assert refused.headers["Content-Range"] == f"bytes */{MB}"


def test_the_first_bytes_arrive_while_upstream_still_holds_the_rest(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    release = held(hub, "hubtest/streamed", BIG, after=8 * MB)
    try:
        with requests.get(
            url(daemon, "w.safetensors", "hubtest/streamed"), stream=True, timeout=60
        ) as r:
            assert r.status_code == 200
            assert int(r.headers["Content-Length"]) == BIG.size
            head = r.raw.read(4 * MB)
            assert head == BIG.read(0, 4 * MB)
            assert not release.is_set()  # upstream has sent 8 MiB of 32: the download is on
            inside = requests.get(
                url(daemon, "w.safetensors", "hubtest/streamed"),
                headers={"Range": "bytes=5000000-5000099"},
                timeout=30,
            )
            assert inside.status_code == 206
            assert inside.content == BIG.read(5_000_000, 5_000_100)
            release.set()
            rest = r.raw.read()
        assert hashlib.sha256(head + rest).hexdigest() == BIG.sha256
    finally:
        release.set()
    assert hub.cdn_traffic.count(f"GET /lfs/{BIG.sha256}") == 1


def test_concurrent_readers_of_one_cold_file_fetch_it_once_upstream(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    content = Content.generated(12 * MB, seed=402)
    release = held(hub, "hubtest/herd", content, after=2 * MB)
    try:
        readers = [
            requests.get(url(daemon, "w.safetensors", "hubtest/herd"), stream=True, timeout=60)
            for _ in range(4)
        ]
        heads = [reader.raw.read(MB) for reader in readers]  # every reader is under way
        release.set()
        bodies = [head + reader.raw.read() for head, reader in zip(heads, readers, strict=True)]
        for reader in readers:
            reader.close()
    finally:
        release.set()
    assert {hashlib.sha256(body).hexdigest() for body in bodies} == {content.sha256}
    assert hub.cdn_traffic.count(f"GET /lfs/{content.sha256}") == 1


def test_upstream_down_serves_what_is_cached_and_says_why_for_the_rest(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    hub.commit("hubtest/outage", {"cached.json": b'{"here": true}', "missing.json": b"{}"})
    assert requests.get(url(daemon, "cached.json", "hubtest/outage"), timeout=30).status_code == 200
    hub.down = True
    try:
        cached = requests.get(url(daemon, "cached.json", "hubtest/outage"), timeout=30)
        assert cached.content == b'{"here": true}'
        head = requests.head(url(daemon, "missing.json", "hubtest/outage"), timeout=30)
        assert head.status_code == 200  # the revision is cached: its listing answers HEAD
        missing = requests.get(url(daemon, "missing.json", "hubtest/outage"), timeout=60)
        assert missing.status_code == 502
        assert "could not reach the Hub" in missing.json()["error"]
        unknown = requests.get(url(daemon, "a.json", "hubtest/never-seen"), timeout=60)
        assert unknown.status_code == 502
        assert "X-Error-Message" in unknown.headers
        tree = requests.get(f"{daemon.url}/hf/api/models/hubtest/outage/tree/main", timeout=30)
        assert sorted(e["path"] for e in tree.json()) == ["cached.json", "missing.json"]
    finally:
        hub.down = False


def test_bytes_that_fail_their_digest_are_never_served_whole_nor_kept(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    content = Content.generated(3 * MB, seed=403)
    hub.commit("hubtest/corrupt", {"w.safetensors": content})
    hub.set_faults(content, Faults(corrupt=True))
    got = bytearray()

    def read() -> None:
        with requests.get(
            url(daemon, "w.safetensors", "hubtest/corrupt"), stream=True, timeout=60
        ) as response:
            for chunk in response.iter_content(MB):
                got.extend(chunk)

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        read()
    assert len(got) < content.size
    blob = Path(daemon.config["store"]["path"], "blobs", "sha256", content.sha256[:2])
    assert not (blob / content.sha256[2:]).exists()
    entries = daemon.client().get("/v1/resources")["resources"]
    [entry] = [
        e
        for e in entries
        if e["details"].get("repo") == "hubtest/corrupt" and e["details"].get("path")
    ]
    assert entry["state"] == "failed"
    assert "sha256" in entry["error"]


def test_a_drop_upstream_mid_body_is_resumed_and_the_reader_never_notices(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    content = Content.generated(6 * MB, seed=404)
    hub.commit("hubtest/dropped", {"w.safetensors": content})
    hub.set_faults(content, Faults(drop_after=2 * MB + 17, drop_times=1))
    body = requests.get(url(daemon, "w.safetensors", "hubtest/dropped"), timeout=60).content
    assert hashlib.sha256(body).hexdigest() == content.sha256
    assert hub.cdn_traffic.count(f"GET /lfs/{content.sha256}") == 2  # the resume: one more


def test_a_reader_that_leaves_mid_file_leaves_the_download_going(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    content = Content.generated(8 * MB, seed=405)
    release = held(hub, "hubtest/left", content, after=MB)
    try:
        with requests.get(
            url(daemon, "w.safetensors", "hubtest/left"), stream=True, timeout=60
        ) as r:
            assert r.raw.read(64 * 1024) == content.read(0, 64 * 1024)
    finally:
        release.set()  # the reader has gone; upstream sends the rest to the daemon
    again = requests.get(url(daemon, "w.safetensors", "hubtest/left"), timeout=60)
    assert hashlib.sha256(again.content).hexdigest() == content.sha256
    assert hub.cdn_traffic.count(f"GET /lfs/{content.sha256}") == 1
