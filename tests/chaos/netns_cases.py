"""Run by test_network.py inside a network namespace (see there); not collected on its own.

Servers here listen on 203.0.114.1, which the SSRF guard counts as public, and on 127.0.0.1,
which it must never let a job's URL reach, however the URL gets there.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from daemon.cache import Cache
from daemon.clock import SystemClock
from daemon.errors import UnsafeUpstream, UpstreamUnavailable
from daemon.resources import S3Resource, parse_resource
from daemon.settings import load_settings
from daemon.sources import Sources
from daemon.store import Store

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
        self.public_port = 0
        self.private_port = 0

    async def _public(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("list-type"):
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
    async with Store.open(settings.store, clock=SystemClock()) as store:
        sources = Sources(settings)
        await sources.start()
        cache = Cache(store, sources)
        try:
            yield cache
        finally:
            await cache.close()
            await sources.close()


def s3(url: str, *files: str) -> S3Resource:
    resource = parse_resource({"type": "S3", "url": url, "files": list(files)})
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
