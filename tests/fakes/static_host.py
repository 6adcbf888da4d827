"""A host that serves files by plain GET and HEAD, and refuses S3 listing (403 AccessDenied).

This is what a bucket behind a CDN or its own domain often looks like (models.nosana.io):
objects readable by URL, listing denied. It streams bodies (Range, ETag = MD5) through
`send_content`, so it also serves throughput benchmarks without moto's per-request copy.
"""

from __future__ import annotations

from aiohttp import web

from .content import Content
from .faults import Faults, Traffic, send_content
from .server import ThreadedServers

_DENIED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Access Denied</Message></Error>"
)


class StaticHost:
    def __init__(self, servers: ThreadedServers, *, listing: bool = False) -> None:
        self.files: dict[str, Content] = {}
        self.faults: dict[str, Faults] = {}
        self.traffic = Traffic()
        self.listing = listing
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        self.url = servers.serve(app)

    def put(self, path: str, content: bytes | Content) -> Content:
        data = content if isinstance(content, Content) else Content.of(content)
        self.files[path.lstrip("/")] = data
        return data

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.traffic.requests[f"{request.method} {request.path}"] += 1
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        if "list-type" in request.query:
            return web.Response(status=403, text=_DENIED, content_type="application/xml")
        path = request.match_info["path"]
        content = self.files.get(path)
        if content is None:
            return web.Response(status=404, text="Not Found")
        headers = {"ETag": f'"{content.md5}"', "Content-Type": "application/octet-stream"}
        return await send_content(request, content, self.faults.get(path), self.traffic, headers)
