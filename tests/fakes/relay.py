"""Forwarding a request to an upstream and streaming its answer back, for the fakes that stand
in front of the test registry (bearer.py's token gate, blob_redirect.py's CDN redirects).

Hop-by-hop headers stay behind; redirects go back to the client as they are (it follows them,
not the relay); bodies are streamed in 256 KiB pieces, undecoded.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class Relay:
    def __init__(self, upstream: str, app: web.Application) -> None:
        """Forward to `upstream`; the session closes with `app`."""
        self.upstream = upstream.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        app.on_cleanup.append(self._close)

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def forward(
        self, request: web.Request, drop: frozenset[str] = frozenset()
    ) -> web.StreamResponse:
        """`request` sent upstream without its hop-by-hop headers and those in `drop`
        (lower-case); upstream's answer streamed back."""
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP | drop}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, allow_redirects=False
        ) as upstream:
            reply = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP},
            )
            if upstream.content_length is not None:
                reply.content_length = upstream.content_length
            await reply.prepare(request)
            async for chunk in upstream.content.iter_chunked(256 * 1024):
                await reply.write(chunk)
            await reply.write_eof()
            return reply
