"""Liveness, readiness and the daemon's status: what an operator or a probe asks first."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from aiohttp import web

from .. import __version__
from .context import ApiContext, context_of
from .shapes import timestamp

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves; no dependency is consulted (that is /readyz)."""
    return web.json_response({"status": "ok"})


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    context = context_of(request)
    docker = await context.engine.status()
    body: dict[str, Any] = {
        "version": __version__,
        "uptime_seconds": round(time.time() - context.started_at, 1),
        "store": await _store_status(context),
        "docker": asdict(docker) | {"has_gpu": docker.has_gpu},
        "transfers": {"in_flight": context.store.transfers_in_flight()},
        "market": {
            "address": context.market.address,
            "ready": context.market.ready(),
            "items": len(context.market.state.items),
            "missing": len(context.market.missing()),
            "last_error": context.market.state.last_error,
        },
        "scheduler": {
            name: {
                "runs": health.runs,
                "failures": health.failures,
                "last_error": health.last_error,
                "last_run_at": timestamp(health.last_run_at),
            }
            for name, health in context.scheduler.health.items()
        },
    }
    return web.json_response(body)


async def _store_status(context: ApiContext) -> dict[str, Any]:
    settings = context.settings.store
    store = context.store
    usage = await store.usage()
    room, states = usage.room, usage.entries_by_state
    return {
        "path": str(settings.path),
        "host_path": str(settings.engine_path),
        "bytes_used": usage.bytes_used,
        "max_size": settings.max_size,
        "min_free": settings.min_free,
        "fs_free_bytes": room.fs_free,
        "available_bytes": max(0, room.available()),
        "ttl_seconds": settings.ttl,
        "ttl_from": settings.ttl_from,
        "entries": sum(states.values()),
        "entries_by_state": states,
        "blobs": usage.blobs,
        "hits": sum(store.stats.hits.values()),
        "misses": sum(store.stats.misses.values()),
    }
