"""A reverse proxy that injects faults into another server's responses (errors with
Retry-After, stalls, drops, trickles, bodies held until the test releases them).

Put in front of a real peer (the docker-registry serving Ollama models, moto's server as a site
store), it makes the peer misbehave in the ways networks do, without changing the peer. Faults
are found by a substring of the request's path and `Range` (`"<path> bytes=<first>-<last>"`),
so one piece of an object can be held while the others pass. With `hold_answer`, the answer
itself is held, status and headers too (a HEAD is held as well as a GET); with
`drop_at_release`, a body held mid-way is cut once released instead of sent on.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from .faults import HOLD_LIMIT, Faults, Traffic, hold_back, trickle_out
from .server import ThreadedServers

_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class FaultyProxy:
    def __init__(self, servers: ThreadedServers, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: dict[str, Faults] = {}  # path substring -> faults
        self.traffic = Traffic()
        self._session: aiohttp.ClientSession | None = None
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        app.on_cleanup.append(self._close)
        self.url = servers.serve(app)

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _faults_for(self, request: web.Request) -> Faults:
        asked = f"{request.path} {request.headers.get('Range', '')}"
        return next((f for key, f in self.faults.items() if key in asked), Faults())

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.traffic.requests[f"{request.method} {request.path}"] += 1
        if "Range" in request.headers:
            self.traffic.ranges.append((request.path, request.headers["Range"]))
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        # Repeated headers stay repeated: a registry client sends one Accept per media type.
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP)
        body = await request.read()
        faults = self._faults_for(request)
        if faults.fail_times > 0:
            faults.fail_times -= 1
            extra = {"Retry-After": faults.retry_after} if faults.retry_after is not None else {}
            return web.Response(status=faults.fail_status, text="injected failure", headers=extra)
        if faults.hold is not None and faults.hold_answer and not faults.hold.is_set():
            faults.held.set()
            await asyncio.to_thread(faults.hold.wait, HOLD_LIMIT)
        trickle = faults.trickle_bytes_per_s if faults.trickle_times > 0 else None
        if trickle:
            faults.trickle_times -= 1
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            reply = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP},
            )
            if upstream.content_length is not None:
                reply.content_length = upstream.content_length
            await reply.prepare(request)
            sent = 0
            async for chunk in upstream.content.iter_chunked(256 * 1024):
                if faults.hold is not None and faults.hold_after is not None:
                    chunk, sent = await hold_back(
                        reply,
                        chunk,
                        sent,
                        faults.hold_after,
                        faults.hold,
                        self.traffic,
                        faults.held,
                    )
                    if faults.drop_at_release and sent >= faults.hold_after:
                        faults.drop_at_release = False  # once
                        assert request.transport is not None
                        request.transport.abort()
                        return reply
                if (
                    faults.stall_after is not None
                    and faults.stall_times > 0
                    and sent + len(chunk) > faults.stall_after
                ):
                    faults.stall_times -= 1
                    await asyncio.sleep(faults.stall_seconds)
                if (
                    faults.drop_after is not None
                    and faults.drop_times > 0
                    and sent + len(chunk) > faults.drop_after
                ):
                    faults.drop_times -= 1
                    await reply.write(chunk[: max(0, faults.drop_after - sent)])
                    assert request.transport is not None
                    request.transport.abort()
                    return reply
                try:
                    if trickle:
                        await trickle_out(reply, chunk, trickle)
                    else:
                        await reply.write(chunk)
                except ConnectionResetError:
                    return reply
                sent += len(chunk)
                self.traffic.body_bytes += len(chunk)
            await reply.write_eof()
            return reply
