"""Run by test_network.py inside a network namespace (see there); not collected on its own.

Servers here listen on 203.0.114.1, which the SSRF guard counts as public, and on 127.0.0.1,
which it must never let a job's URL reach, however the URL gets there.
"""

from __future__ import annotations

import copy
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from daemon.cache import Cache
from daemon.errors import UnsafeUpstream, UpstreamUnavailable
from daemon.resources import S3Resource, parse_resource
from daemon.settings import load_settings
from tests.daemon_process import DaemonProcess
from tests.integration.conftest import open_cache

PUBLIC = os.environ.get("NETNS_PUBLIC_ADDRESS", "")
SECRET = b"instance credentials"


@pytest.fixture(autouse=True)
def _inside_the_namespace() -> None:
    assert PUBLIC, "run through tests/chaos/test_network.py, inside its namespace"


class Servers:
    """A 'public' host that lists nothing and redirects where it is told, and a private one."""

    def __init__(self) -> None:
        self.private_hits = 0
        self.redirect_to = ""
        self.redirect_listing = False
        self.public_port = 0
        self.private_port = 0

    async def _public(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("list-type"):
            if self.redirect_listing:
                raise web.HTTPTemporaryRedirect(self.redirect_to)
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>")
        if request.path.endswith("/plain.bin"):
            return web.Response(body=b"public bytes")
        raise web.HTTPFound(self.redirect_to)

    async def _private(self, request: web.Request) -> web.Response:
        self.private_hits += 1
        return web.Response(body=SECRET)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Servers]:
        runners = []
        for handler, host in ((self._public, PUBLIC), (self._private, "127.0.0.1")):
            app = web.Application()
            app.router.add_get("/{tail:.*}", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, host, 0)
            await site.start()
            runners.append(runner)
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            if host == PUBLIC:
                self.public_port = port
            else:
                self.private_port = port
        try:
            yield self
        finally:
            for runner in runners:
                await runner.cleanup()


@asynccontextmanager
async def guarded_cache(root: Path) -> AsyncIterator[Cache]:
    settings = load_settings(
        None,
        {
            "HOME": str(root),
            "NOSANA_CACHE_STORE__PATH": str(root / "store"),
            "NOSANA_CACHE_STORE__MIN_FREE": "0",
            "NOSANA_CACHE_DOWNLOAD__MAX_RETRIES": "2",
        },
    )
    assert settings.security.allow_private_urls is False
    async with open_cache(settings) as cache:
        yield cache


def s3(url: str, *files: str) -> S3Resource:
    resource = parse_resource(
        {"type": "S3", "url": url, **({"files": list(files)} if files else {})}
    )
    assert isinstance(resource, S3Resource)
    return resource


async def test_a_public_host_is_reachable(tmp_path: Path) -> None:
    """The guard is not refusing everything: the public address serves a job's file."""
    async with Servers().running() as servers, guarded_cache(tmp_path) as cache:
        url = f"http://public.example:{servers.public_port}/bucket/m"
        lease = await cache.acquire(s3(url, "plain.bin"), holder="t")
        assert lease.view is not None
        assert (lease.view / "plain.bin").read_bytes() == b"public bytes"


@pytest.mark.parametrize("by_name", [False, True])
async def test_a_redirect_from_public_to_private_is_refused(tmp_path: Path, by_name: bool) -> None:
    async with Servers().running() as servers, guarded_cache(tmp_path) as cache:
        host = "sneaky.example" if by_name else "127.0.0.1"
        servers.redirect_to = f"http://{host}:{servers.private_port}/latest/meta-data"
        url = f"http://{PUBLIC}:{servers.public_port}/bucket/m"
        with pytest.raises(UnsafeUpstream) as refused:
            await cache.acquire(s3(url, "creds.json"), holder="t")
        assert host in str(refused.value)
        assert servers.private_hits == 0
        assert await cache.store.entries() == []  # a failed first fetch leaves no entry
        stored = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
        assert not any(SECRET in p.read_bytes() for p in stored)


@pytest.mark.parametrize("by_name", [False, True])
async def test_a_listing_redirected_from_public_to_private_is_refused(
    tmp_path: Path, by_name: bool
) -> None:
    """The listing goes through aiobotocore, whose aiohttp session follows redirects by itself:
    the guard sits under it, in the resolver and in the socket it would open."""
    async with Servers().running() as servers, guarded_cache(tmp_path) as cache:
        host = "sneaky.example" if by_name else "127.0.0.1"
        servers.redirect_to = f"http://{host}:{servers.private_port}/bucket?list-type=2"
        servers.redirect_listing = True
        url = f"http://{PUBLIC}:{servers.public_port}/bucket/m"
        with pytest.raises(UnsafeUpstream) as refused:
            await cache.acquire(s3(url), holder="t")
        assert host in str(refused.value)
        assert servers.private_hits == 0
        assert await cache.store.entries() == []


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[fe80::1]",
        "[fd00::1]",
    ],
)
async def test_private_literal_addresses_are_refused_before_any_connection(
    tmp_path: Path, host: str
) -> None:
    async with guarded_cache(tmp_path) as cache:
        with pytest.raises(UnsafeUpstream, match="private, loopback or link-local"):
            await cache.acquire(s3(f"http://{host}:9/bucket/m", "creds.json"), holder="t")
        assert await cache.store.entries() == []


async def test_a_name_that_resolves_to_loopback_is_refused(tmp_path: Path) -> None:
    async with Servers().running() as servers, guarded_cache(tmp_path) as cache:
        url = f"http://sneaky.example:{servers.private_port}/bucket/m"
        with pytest.raises(UnsafeUpstream, match=r"sneaky\.example resolves to 127\.0\.0\.1"):
            await cache.acquire(s3(url, "creds.json"), holder="t")
        assert servers.private_hits == 0


async def test_a_name_that_does_not_resolve_fails_clearly_and_soon(tmp_path: Path) -> None:
    async with guarded_cache(tmp_path) as cache:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as failed:
            await cache.acquire(s3("http://no-such-host.invalid/bucket/m", "w.bin"), holder="t")
        assert "no-such-host.invalid" in str(failed.value)
        assert time.monotonic() - started < 20
        assert await cache.store.entries() == []


# -- fuzzing the API ------------------------------------------------------------------------
# Here because a valid generated job is run: its resources are fetched from wherever the
# fuzzer pointed them, and only in this namespace is "wherever" sure to be nowhere.

SEED_JOB = json.loads((Path(__file__).parents[1] / "data/seed-job.json").read_text())
SEED_JOB["ops"][0]["args"]["resources"] += [
    {"type": "S3", "url": "s3://bucket/prefix", "files": ["a.bin"], "target": "/data/s3/"},
    {"type": "Ollama", "model": "llama3:8b"},
]
SEED_JOB["global"] = {"image": "ubuntu", "env": {"A": "1"}, "work_dir": "/w"}
SEED_JOB["ops"].append(
    {
        "id": "second",
        "type": "container/run",
        "execution": {"depends_on": ["huggingface"]},
        "args": {"cmd": "echo %%ops.huggingface.status%%", "image": "busybox", "env": {}},
    }
)
SEED_RESOURCE = {"type": "HF", "repo": "org/model", "revision": "main", "files": ["a.json"]}

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _places(document: Any, into: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    if isinstance(document, dict):
        for key, value in document.items():
            into.append((document, key))
            _places(value, into)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            into.append((document, index))
            _places(value, into)
    return into


@st.composite
def mutated(draw: st.DrawFn, seed: dict[str, Any]) -> Any:
    """The seed with one to four places replaced by random JSON, removed, or given a twin."""
    document = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 4))):
        places = _places(document, [])
        if not places:
            break
        container, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            container[key] = draw(json_value)
        elif action == "remove":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=12))] = draw(json_value)
        else:
            container.append(draw(json_value))
    return document


def post_json(url: str, payload: bytes) -> tuple[int, dict[str, Any]]:
    """POST exactly these bytes (the daemon's client would re-encode them)."""
    request = urllib.request.Request(
        url, data=payload, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _check_answer(route: str, document: Any, status: int, body: dict[str, Any]) -> None:
    """A 4xx naming the field, or accepted. The one 5xx allowed is the documented answer to a
    valid request whose upstream cannot be reached (there is none in this namespace)."""
    if status in (502, 503):
        assert body["title"].startswith("Upstream"), (route, document, body)
        return
    assert status < 500, (route, document, body)
    if status == 400:
        errors = body.get("errors") or []
        assert errors, (route, document, body)
        for error in errors:
            assert error["msg"], body
            assert isinstance(error["loc"], str), body
            if isinstance(document, dict):
                assert error["loc"], (route, document, body)  # names the field
    else:
        assert status in (200, 201, 202), (route, document, body)


def test_fuzzed_jobs_and_resources_get_a_4xx_naming_the_field_or_are_accepted(
    tmp_path: Path,
) -> None:
    daemon = DaemonProcess(
        tmp_path,
        {
            "docker": {"host": f"unix://{tmp_path}/no-docker.sock"},
            "download": {"max_retries": 0},
        },
    ).start()
    served: dict[int, int] = {}

    @seed(int(os.environ.get("CHAOS_SEED", "10")))  # CI repeats a run; vary it to explore
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(route=st.sampled_from(["/v1/jobs", "/v1/resources"]), data=st.data())
    def post(route: str, data: st.DataObject) -> None:
        seed = SEED_JOB if route == "/v1/jobs" else SEED_RESOURCE
        document = data.draw(mutated(seed) | json_value)
        status, body = post_json(daemon.url + route, json.dumps(document).encode())
        served[status] = served.get(status, 0) + 1
        _check_answer(route, document, status, body)

    try:
        post()
    finally:
        assert daemon.stop() == 0
    assert "http.unexpected_error" not in daemon.log()
    assert "Traceback" not in daemon.log()
    print(f"fuzzed requests by status: {served}")
