"""Nosana's host-manager, as far as nodes use it: a market's required resources."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from .faults import Traffic
from .server import ThreadedServers


class FakeMarket:
    def __init__(self, servers: ThreadedServers) -> None:
        self.body: bytes = b'{"required_images": [], "required_remote_resources": []}'
        self.status = 200
        self.delay = 0.0
        self.traffic = Traffic()
        app = web.Application()
        app.router.add_get("/markets/{market}/required-resources", self._required)
        self.base = servers.serve(app)
        self.template = f"{self.base}/markets/{{market}}/required-resources"

    def serve(self, required: dict[str, Any]) -> None:
        self.body, self.status = json.dumps(required).encode(), 200

    async def _required(self, request: web.Request) -> web.Response:
        self.traffic.requests[f"GET {request.path}"] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(body=self.body, status=self.status, content_type="application/json")
