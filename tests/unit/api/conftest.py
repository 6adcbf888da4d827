"""The API in-process: the real app, store and engine client, behind aiohttp's test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from daemon.api.app import build_app
from daemon.api.context import ApiContext
from daemon.cache import Cache
from daemon.clock import ManualClock
from daemon.engine.client import Engine
from daemon.engine.images import Images
from daemon.jobs.records import JobRecords
from daemon.jobs.runner import Runner
from daemon.market import Market
from daemon.scheduler import Scheduler
from daemon.settings import load_settings
from daemon.sources import Sources
from daemon.store import Store
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
        },
    )
    clock = ManualClock()
    async with Store.open(settings.store, clock=clock) as store:
        engine = Engine(settings.docker)
        sources = Sources(settings)
        await sources.start()
        cache = Cache(store, sources)
        records = JobRecords(settings.store.path)
        await records.open()
        runner = Runner(settings, records, cache, Images(engine, store, settings.docker), engine)
        images = Images(engine, store, settings.docker)
        scheduler = Scheduler()
        market = Market(settings.market, store, cache, images, sources.transfer, scheduler)
        context = ApiContext(
            settings=settings,
            engine=engine,
            store=store,
            cache=cache,
            runner=runner,
            market=market,
            scheduler=scheduler,
            metrics=runner.metrics,
        )
        client = TestClient(TestServer(build_app(context)))
        await client.start_server()
        try:
            yield Api(client, store, clock)
        finally:
            await client.close()
            await runner.close()
            await records.close()
            await engine.close()
            await sources.close()
    assert_no_stray_tasks()
