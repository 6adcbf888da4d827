"""Liveness, readiness and the daemon's status: what an operator or a probe asks first."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import asdict
from typing import Any

from aiohttp import web

from .. import __version__
from .context import context_of

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves; no dependency is consulted (that is /readyz)."""
    return web.json_response({"status": "ok"})


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    context = context_of(request)
    settings = context.settings
    docker = await context.engine.status()
    disk = await asyncio.to_thread(_disk_usage, str(settings.store.path))
    body: dict[str, Any] = {
        "version": __version__,
        "uptime_seconds": round(time.time() - context.started_at, 1),
        "store": {
            "path": str(settings.store.path),
            "host_path": str(settings.store.engine_path),
            "max_size": settings.store.max_size,
            "min_free": settings.store.min_free,
            "ttl_seconds": settings.store.ttl,
            "ttl_from": settings.store.ttl_from,
            **disk,
        },
        "docker": asdict(docker) | {"has_gpu": docker.has_gpu},
    }
    return web.json_response(body)


def _disk_usage(path: str) -> dict[str, int]:
    usage = shutil.disk_usage(path)
    return {"fs_total_bytes": usage.total, "fs_free_bytes": usage.free}
