"""The containers' listener says where it is bound, or why not and what to set: a listener
that cannot bind leaves job containers without `HF_ENDPOINT`, which nothing else would show.
Real sockets; the engine is one that is not there."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web

from daemon.engine.client import Engine
from daemon.engine.networks import Networks
from daemon.hub.listener import RETRY_AFTER, ContainerListener
from daemon.settings import load_settings
from daemon.util.clock import ManualClock

NOT_HERE = "198.51.100.7"  # TEST-NET-2: no host holds it


def listener_for(tmp_path: Path, clock: ManualClock, **hub: str) -> ContainerListener:
    env = {
        "HOME": str(tmp_path),
        "NOSANA_CACHE_STORE__PATH": str(tmp_path / "store"),
        "NOSANA_CACHE_DOCKER__HOST": f"unix://{tmp_path}/no-docker.sock",
        "NOSANA_CACHE_HUGGINGFACE__MIRROR_PORT": "0",
        **{f"NOSANA_CACHE_HUGGINGFACE__{k.upper()}": v for k, v in hub.items()},
    }
    settings = load_settings(None, env)
    app = web.Application()
    app.router.add_get("/healthz", _healthz)
    engine = Engine(settings.docker)
    return ContainerListener(settings.huggingface, engine, Networks(engine, "t"), app, clock)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def test_bound_on_the_mirror_address_it_says_where(tmp_path: Path) -> None:
    clock = ManualClock()
    listener = listener_for(tmp_path, clock, mirror_address="127.0.0.1")
    try:
        assert listener.report.state == "pending"
        hub = await listener.endpoint()
        assert hub is not None
        report = listener.report
        assert report.state == "bound"
        assert report.source == "huggingface.mirror_address"
        assert report.address is not None
        assert report.address.startswith("127.0.0.1:")
        assert report.url == hub.url == f"http://nosana-cache.internal:{report.address[10:]}/hf"
        assert hub.extra_host == "nosana-cache.internal:127.0.0.1"
        assert report.checked_at == clock.now()
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{report.address}/healthz") as answer,
        ):
            assert await answer.json() == {"status": "ok"}
    finally:
        await listener.close()


async def test_a_mirror_address_this_host_lacks_is_unbound_with_the_reason_and_the_advice(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    listener = listener_for(tmp_path, clock, mirror_address=NOT_HERE)
    try:
        assert await listener.endpoint() is None
        report = listener.report
        assert report.state == "unbound"
        assert report.address is None
        assert report.url is None
        assert f"cannot listen on {NOT_HERE}:0 (huggingface.mirror_address)" in report.detail
        assert "assign requested address" in report.detail
        assert "job containers get no HF_ENDPOINT" in report.detail
        assert "set huggingface.mirror_address" in report.detail
    finally:
        await listener.close()


async def test_without_an_engine_it_is_pending_and_tried_again_later(tmp_path: Path) -> None:
    clock = ManualClock()
    listener = listener_for(tmp_path, clock)
    try:
        assert await listener.endpoint() is None
        first = listener.report
        assert first.state == "pending"
        assert first.detail.startswith("waiting for the Docker engine: ")
        assert "no-docker.sock" in first.detail
        clock.advance(RETRY_AFTER - 1)
        assert await listener.endpoint() is None
        assert listener.report is first  # not asked again yet
        clock.advance(1)
        assert await listener.endpoint() is None
        assert listener.report is not first
        assert listener.report.checked_at == clock.now()
    finally:
        await listener.close()
        await listener.engine.close()
