"""The Hub endpoint against Hub-like upstreams and hostile requests, on both of its listeners
(the API's `/hf` and the containers' own, bound here on loopback for an engine that is there):

- a cached file of a repo whose openness upstream did not affirm goes only to a token upstream
  accepts, be it a repo whose info leaves out `private` and `gated`, or a private one that
  answers a bad token with a bare 404 or a redirect to a login page;
- malformed requests get the Hub's 4xx, and the daemon's log no traceback;
- `.` and `..` revisions never reach upstream; a branch with `/` goes up encoded;
- a tree page whose next page is on another origin is not followed, and that origin hears
  nothing (no token).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from aiohttp import web

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.engine import IdleEngine
from tests.fakes.hf_hub import FakeHub
from tests.fakes.server import ThreadedServers

MB = 1024 * 1024
UNSAID = "hostile/unsaid-private"
BARE_404 = "hostile/bare-404"
LOGIN = "hostile/login-page"
OPEN = "hostile/open"
WEIGHTS = Content.generated(MB, seed=700)
CONFIG = b'{"secret": "config"}'


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, hub: FakeHub, servers: ThreadedServers
) -> Iterator[DaemonProcess]:
    files: dict[str, bytes | Content] = {"config.json": CONFIG, "w.safetensors": WEIGHTS}
    hub.commit(UNSAID, files, private=True)
    hub.repos[UNSAID].says_openness = False
    hub.commit(BARE_404, files, private=True)
    hub.repos[BARE_404].bad_token_404 = True
    hub.commit(LOGIN, files, private=True)
    hub.repos[LOGIN].bad_token_login = True
    hub.commit(OPEN, files)
    hub.commit(OPEN, {"config.json": b"{}"}, branch="feature/x", keep=True)
    engine = IdleEngine(servers)
    config: dict[str, dict[str, Any]] = {
        "huggingface": {"endpoint": hub.url, "mirror_address": "127.0.0.1", "mirror_port": 0},
        "docker": {"host": engine.host},
        "download": {"max_retries": 1},
    }
    process = DaemonProcess(tmp_path_factory.mktemp("hub-hostile"), config).start()
    yield process
    assert process.stop() == 0
    assert "Traceback" not in process.log()
    assert "unexpected_error" not in process.log()


@pytest.fixture(scope="module")
def listeners(daemon: DaemonProcess) -> list[str]:
    """The base URLs of `/hf` on the API's listener and on the containers'."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in daemon.log().splitlines():
            if '"hub.listening"' in line:
                return [f"{daemon.url}/hf", f"http://{json.loads(line)['address']}/hf"]
        time.sleep(0.05)
    raise AssertionError(f"the containers' listener never bound:\n{daemon.log()}")


def get(url: str, token: str | None = None, **headers: str) -> requests.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(url, headers=headers, timeout=60)


def raw(
    method: str, url: str, body: bytes = b"", headers: dict[str, bytes] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A request sent byte for byte: HTTP libraries take `..` out of a URL before they send
    it, and refuse a header that is not Latin-1."""
    address, _, path = url.removeprefix("http://").partition("/")
    host, _, port = address.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(method, f"/{path}", body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def asked_about(hub: FakeHub, repo: str) -> int:
    return sum(n for key, n in hub.traffic.requests.items() if repo in key)


@pytest.mark.parametrize("repo", [UNSAID, BARE_404, LOGIN])
def test_a_repo_not_said_to_be_public_gives_its_cached_files_only_to_an_accepted_token(
    listeners: list[str], hub: FakeHub, repo: str
) -> None:
    for path, data in (("config.json", CONFIG), ("w.safetensors", WEIGHTS.read())):
        good = get(f"{listeners[0]}/{repo}/resolve/main/{path}", hub.token)
        assert (good.status_code, good.content) == (200, data)
        for base in listeners:
            for token in (None, "hf_wrong"):
                refused = get(f"{base}/{repo}/resolve/main/{path}", token)
                assert refused.status_code in (401, 403, 404), (base, token)
                assert refused.headers["X-Error-Message"]
                assert data not in refused.content
                if refused.status_code == 404:  # the bare 404, in the Hub's shape
                    assert refused.headers["X-Error-Code"] == "RepoNotFound"
                ranged = get(f"{base}/{repo}/resolve/main/{path}", token, Range="bytes=0-3")
                assert ranged.status_code in (401, 403, 404)
                info = get(f"{base}/api/models/{repo}", token)
                assert info.status_code in (401, 403, 404)
                assert "w.safetensors" not in info.text
            again = get(f"{base}/{repo}/resolve/main/{path}", hub.token)
            assert (again.status_code, again.content) == (200, data)


HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("asked", "status", "body"),
    [
        (f"bytes={HUGE}-", 416, None),
        (f"bytes=0-{HUGE}", 206, CONFIG),
        (f"bytes=-{HUGE}", 206, CONFIG),
        (f"bytes={'0' * 5000}2-5", 206, CONFIG[2:6]),
    ],
    ids=["start", "end", "suffix", "zeros"],
)
def test_a_range_of_any_length_is_answered_not_crashed_on(
    listeners: list[str], asked: str, status: int, body: bytes | None
) -> None:
    for base in listeners:
        answer = get(f"{base}/{OPEN}/resolve/main/config.json", Range=asked)
        assert answer.status_code == status, base
        if status == 416:
            assert answer.headers["X-Error-Message"]
            assert answer.headers["Content-Range"] == f"bytes */{len(CONFIG)}"
        else:
            assert answer.content == body


def test_a_range_in_digits_of_another_script_is_not_one_this_endpoint_takes(
    listeners: list[str],
) -> None:
    for base in listeners:
        url = f"{base}/{OPEN}/resolve/main/config.json"
        status, _headers, body = raw("GET", url, headers={"Range": "bytes=٣-".encode()})
        assert (status, body) == (200, CONFIG)  # the whole file, as for any other unit


def _nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BODIES: dict[str, tuple[str, bytes]] = {
    "not-json": (JSON, b"paths=config.json"),
    "not-utf8": (JSON, b'{"paths": ["\xff"]}'),
    "deep": (JSON, _nested(100_000)),
    "deep-inside": (JSON, b'{"paths": ' + _nested(50) + b"}"),
    "huge-number": (JSON, b'{"paths": [' + HUGE.encode() + b"]}"),
    "number": (JSON, b'{"paths": 5}'),
    "mixed": (JSON, b'{"paths": ["config.json", 1]}'),
    "nan": (JSON, b'{"paths": [NaN]}'),
    "too-big": (JSON, b'{"paths": ["' + b"a" * (2 * MB) + b'"]}'),
    "form-not-utf8": (FORM, b"paths=%ff%fe"),
    "form-too-big": (FORM, b"paths=" + b"a" * (2 * MB)),
    "multipart-broken": ("multipart/form-data; boundary=xyz", b"--xyz\r\nnonsense"),
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_a_paths_info_body_of_any_shape_gets_the_hubs_400(
    listeners: list[str], hub: FakeHub, case: str
) -> None:
    content_type, body = BODIES[case]
    before = asked_about(hub, OPEN)
    for base in listeners:
        answer = requests.post(
            f"{base}/api/models/{OPEN}/paths-info/main",
            data=body,
            headers={"Content-Type": content_type},
            timeout=60,
        )
        assert 400 <= answer.status_code < 500, (base, answer.status_code, answer.text)
        assert answer.headers["X-Error-Message"]
        assert "error" in answer.json()
    assert asked_about(hub, OPEN) == before  # refused before anything was asked


def test_a_well_formed_paths_info_body_still_reads(listeners: list[str]) -> None:
    for base in listeners:
        url = f"{base}/api/models/{OPEN}/paths-info/main"
        form = requests.post(url, data={"paths": ["config.json", "absent"]}, timeout=60)
        as_json = requests.post(url, json={"paths": ["w.safetensors"]}, timeout=60)
        assert [e["path"] for e in form.json()] == ["config.json"]
        assert [e["path"] for e in as_json.json()] == ["w.safetensors"]


@pytest.mark.parametrize("revision", ["..", ".", "%2E%2E", "%2e", "a%2F..%2Fb", "..%5Cx"])
def test_a_revision_that_climbs_is_refused_and_never_reaches_upstream(
    listeners: list[str], hub: FakeHub, revision: str
) -> None:
    before = asked_about(hub, OPEN)
    for base in listeners:
        for path in (
            f"/api/models/{OPEN}/revision/{revision}",
            f"/api/models/{OPEN}/tree/{revision}",
            f"/{OPEN}/resolve/{revision}/config.json",
        ):
            status, headers, _body = raw("GET", f"{base}{path}")
            assert (status, headers["X-Error-Code"]) == (400, "BadRequest"), (base, path)
        form = {"Content-Type": FORM.encode()}
        url = f"{base}/api/models/{OPEN}/paths-info/{revision}"
        status, headers, _body = raw("POST", url, b"paths=config.json", form)
        assert (status, headers["X-Error-Code"]) == (400, "BadRequest"), (base, url)
    assert asked_about(hub, OPEN) == before


def test_a_branch_with_a_slash_goes_upstream_encoded(listeners: list[str], hub: FakeHub) -> None:
    commit = hub.repos[OPEN].refs["feature/x"]
    for base in listeners:
        info = get(f"{base}/api/models/{OPEN}/revision/feature%2Fx")
        assert (info.status_code, info.json()["sha"]) == (200, commit)
        file = get(f"{base}/{OPEN}/resolve/feature%2Fx/config.json")
        assert (file.status_code, file.content) == (200, b"{}")


@pytest.mark.parametrize("cursor", ["²", HUGE, "-1", "x"])
def test_a_tree_cursor_of_any_kind_is_answered(listeners: list[str], cursor: str) -> None:
    for base in listeners:
        answer = get(f"{base}/api/models/{OPEN}/tree/main?cursor={cursor}")
        assert answer.status_code == 200, base
        assert isinstance(answer.json(), list)


def test_a_tree_page_linking_off_upstream_is_not_followed_nor_given_the_token(
    listeners: list[str], hub: FakeHub, servers: ThreadedServers
) -> None:
    heard: list[dict[str, str]] = []

    async def listen(request: web.Request) -> web.Response:
        heard.append(dict(request.headers))
        return web.json_response([])

    other = web.Application()
    other.router.add_get("/{path:.*}", listen)
    elsewhere = servers.serve(other)
    repo = "hostile/linked-away"
    hub.commit(repo, {"config.json": b"{}"}, private=True)
    hub.repos[repo].next_link = f"{elsewhere}/api/models/{repo}/tree/main?cursor=1"
    for base in listeners:
        answer = get(f"{base}/api/models/{repo}/revision/main", hub.token)
        assert answer.status_code == 502, answer.text
        assert "another origin" in answer.headers["X-Error-Message"]
    assert heard == []
