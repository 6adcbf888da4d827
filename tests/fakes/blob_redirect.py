"""A registry that sends its blobs to a content host, as Docker Hub sends them to its CDN.

In front of a real registry: `GET /v2/<name>/blobs/<digest>` of a blob the content host
(tests/fakes/static_host.py, which honours `Range`) has answers `307` to it; every other
request is passed through, streamed, to the registry behind.
"""

from __future__ import annotations

import re

import aiohttp
from aiohttp import web

from .faults import Traffic
from .server import ThreadedServers
from .static_host import StaticHost

_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}
_BLOB = re.compile(r"^/v2/.+/blobs/(sha256:[0-9a-f]{64})$")


class BlobRedirect:
    def __init__(self, servers: ThreadedServers, upstream: str, cdn: StaticHost) -> None:
        self.upstream = upstream.rstrip("/")
        self.cdn = cdn
        self.traffic = Traffic()
        self._session: aiohttp.ClientSession | None = None
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        app.on_cleanup.append(self._close)
        self.url = servers.serve(app)

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.traffic.requests[f"{request.method} {request.path}"] += 1
        blob = _BLOB.match(request.path)
        if request.method == "GET" and blob and f"blobs/{blob.group(1)}" in self.cdn.files:
            raise web.HTTPTemporaryRedirect(f"{self.cdn.url}/blobs/{blob.group(1)}")
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, allow_redirects=False
        ) as upstream:
            reply = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP},
            )
            if upstream.content_length is not None:
                reply.content_length = upstream.content_length
            await reply.prepare(request)
            async for chunk in upstream.content.iter_chunked(256 * 1024):
                await reply.write(chunk)
            await reply.write_eof()
            return reply
