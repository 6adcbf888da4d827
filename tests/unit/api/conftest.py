"""The API in-process: the daemon's own wiring (Service), behind aiohttp's test server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from daemon.api.app import build_app
from daemon.service import Service
from daemon.settings import load_settings
from daemon.store import Store
from daemon.util.clock import ManualClock
from tests.conftest import assert_no_stray_tasks


@dataclass
class Api:
    client: TestClient  # type: ignore[type-arg]
    store: Store
    clock: ManualClock


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = load_settings(
        None,
        {
            "HOME": str(tmp_path),
            "NOSANA_CACHE_STORE__PATH": str(tmp_path / "store"),
            "NOSANA_CACHE_STORE__MIN_FREE": "0",
            "NOSANA_CACHE_DOCKER__HOST": f"unix://{tmp_path}/no-docker.sock",
            "NOSANA_CACHE_DOCKER__FENCE": "off",  # the host's firewall is test_fence.py's
            "NOSANA_CACHE_REGISTRY__LISTEN": "127.0.0.1:0",  # tests never share a port
        },
    )
    clock = ManualClock()
    async with contextlib.AsyncExitStack() as stack:
        context = await Service(settings, clock=clock).build(stack)
        client = TestClient(TestServer(build_app(context)))
        await client.start_server()
        stack.push_async_callback(client.close)
        yield Api(client, context.store, clock)
    assert_no_stray_tasks()
