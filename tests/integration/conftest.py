"""The daemon's cache in-process (real store, real sources) against the test bed's peers.

The modules in `SLOW_MODULES` run whole jobs in the Docker engine (containers, services,
restarts, a site of two nodes, Nosana's node through the engine socket, the market on its
Podman) or change the host's firewall (the fence): CI runs them, `pytest -m "not slow"` leaves
them out so that the fast part stays a few minutes on two cores (it keeps everything else, the
Docker pulls and the Hub endpoint's container tests included).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from daemon.cache import Cache
from daemon.settings import Settings, load_settings
from daemon.sources import Sources
from daemon.store import Store
from daemon.util.clock import SystemClock
from tests.conftest import assert_no_stray_tasks
from tests.fakes.hf_hub import FakeHub
from tests.peers.s3 import S3Peer
from tests.peers.s3rver import S3rverPeer

CacheFactory = Callable[..., Any]

SLOW_MODULES = frozenset(
    {
        "test_jobs.py",
        "test_services.py",
        "test_market.py",
        "test_site_jobs.py",
        "test_site_upkeep.py",
        "test_operate.py",
        "test_private_images.py",
        "test_hub_fresh_engine.py",
        "test_fence.py",
        "test_node_socket.py",
        "test_node_socket_podman.py",
        "test_node_market_podman.py",
        "test_node_pulls_podman.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        module = Path(str(item.fspath))
        if module.parent == here and module.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def peer_settings(
    root: Path, hub: FakeHub | None, s3: S3Peer | S3rverPeer | None, **env: str
) -> Settings:
    values = {
        "HOME": str(root),
        "NOSANA_CACHE_STORE__PATH": str(root / "store"),
        "NOSANA_CACHE_STORE__MIN_FREE": "0",
        "NOSANA_CACHE_DOWNLOAD__MAX_RETRIES": "4",
        "NOSANA_CACHE_DOWNLOAD__STALL_TIMEOUT": "5s",
        "NOSANA_CACHE_DOCKER__FENCE": "off",  # the host's firewall is test_fence.py's
    }
    if hub is not None:
        values["HF_ENDPOINT"] = hub.url
    if s3 is not None:
        values["NOSANA_CACHE_S3__ENDPOINT_URL"] = s3.url
    values.update(env)
    return load_settings(None, values)


@asynccontextmanager
async def open_cache(settings: Settings) -> AsyncIterator[Cache]:
    """The daemon's cache (store and sources) on `settings`, closed in order afterwards."""
    clock = SystemClock()
    async with Store.open(settings.store, clock=clock) as store:
        sources = Sources(settings, clock=clock)
        await sources.start()
        cache = Cache(store, sources)
        try:
            yield cache
        finally:
            await cache.close()
            await sources.close()


@pytest.fixture
def make_cache(tmp_path: Path) -> CacheFactory:
    """`async with make_cache(hub=..., s3=..., **env) as cache:` a cache over fresh storage."""

    @asynccontextmanager
    async def make(
        hub: FakeHub | None = None, s3: S3Peer | S3rverPeer | None = None, **env: str
    ) -> AsyncIterator[Cache]:
        async with open_cache(peer_settings(tmp_path, hub, s3, **env)) as cache:
            yield cache
        assert_no_stray_tasks()

    return make
