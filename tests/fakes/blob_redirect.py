"""A registry that sends its blobs to a content host, as Docker Hub sends them to its CDN.

In front of a real registry: `GET /v2/<name>/blobs/<digest>` of a blob the content host
(tests/fakes/static_host.py, which honours `Range`) has answers `307` to it; every other
request is passed through, streamed, to the registry behind.
"""

from __future__ import annotations

import re

from aiohttp import web

from .faults import Traffic
from .relay import Relay
from .server import ThreadedServers
from .static_host import StaticHost

_BLOB = re.compile(r"^/v2/.+/blobs/(sha256:[0-9a-f]{64})$")


class BlobRedirect:
    def __init__(self, servers: ThreadedServers, upstream: str, cdn: StaticHost) -> None:
        self.cdn = cdn
        self.traffic = Traffic()
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        self._relay = Relay(upstream, app)
        self.url = servers.serve(app)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.traffic.requests[f"{request.method} {request.path}"] += 1
        blob = _BLOB.match(request.path)
        if request.method == "GET" and blob and f"blobs/{blob.group(1)}" in self.cdn.files:
            raise web.HTTPTemporaryRedirect(f"{self.cdn.url}/blobs/{blob.group(1)}")
        return await self._relay.forward(request)
