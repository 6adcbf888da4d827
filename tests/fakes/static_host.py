"""A host that serves files by plain GET and HEAD, and refuses S3 listing (403 AccessDenied).

This is what a bucket behind a CDN or its own domain often looks like (models.nosana.io):
objects readable by URL, listing denied. With `listing=True` it also answers path-style
ListObjectsV2 (`/bucket?list-type=2&prefix=`), enough for boto3 and the daemon to treat it as
an S3 endpoint. It streams bodies (Range, ETag = MD5) through `send_content`, so it serves
throughput benchmarks without moto's copy of the whole object per ranged GET.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

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

    def _list(self, bucket: str, prefix: str) -> web.Response:
        """One page of every key under `bucket/prefix` (these fakes hold few files)."""
        base = f"{bucket.strip('/')}/"
        items = []
        for path, content in sorted(self.files.items()):
            key = path[len(base) :]
            if path.startswith(base) and key.startswith(prefix):
                items.append(
                    f"<Contents><Key>{escape(key)}</Key><Size>{content.size}</Size>"
                    f'<ETag>"{content.md5}"</ETag></Contents>'
                )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(items)}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>false</IsTruncated>{''.join(items)}</ListBucketResult>"
        )
        return web.Response(text=body, content_type="application/xml")

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.traffic.requests[f"{request.method} {request.path}"] += 1
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        if "list-type" in request.query:
            if not self.listing:
                return web.Response(status=403, text=_DENIED, content_type="application/xml")
            return self._list(request.match_info["path"], request.query.get("prefix", ""))
        path = request.match_info["path"]
        content = self.files.get(path)
        if content is None:
            return web.Response(status=404, text="Not Found")
        headers = {"ETag": f'"{content.md5}"', "Content-Type": "application/octet-stream"}
        return await send_content(request, content, self.faults.get(path), self.traffic, headers)
