"""The pass-through: every request the node sends goes to the real engine as it came.

One client connection is paired with at most one connection to the engine, opened at its
first forwarded request and kept while both sides keep it alive (Node's agent reuses
connections, so the next request on it may be one the daemon answers itself). Each request
is read head first; an interception (`Intercept`) may answer it, change a create's body, or
decline, and what it declines is forwarded byte for byte: the head as received, the body in
its own framing, the answer likewise. An answer without length framing (a hijacked attach or
exec, Docker's `101 UPGRADED`, a stream to the end) turns the connection into a raw splice of
both directions until the engine's side ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from ..logs import get_logger
from .http1 import (
    MAX_HEAD,
    PIECE,
    ProtocolError,
    Request,
    copy_body,
    error_response,
    parse_request,
    parse_response,
    read_body,
    read_head,
    with_body,
)

log = get_logger(__name__)

Intercept = Callable[["Exchange"], Awaitable[bool]]
"""Answers the exchange (True), or leaves it to be forwarded (False)."""


class Exchange:
    """One request on a client connection, for an interception to answer or forward."""

    def __init__(self, connection: Connection, request: Request) -> None:
        self.connection = connection
        self.request = request
        self._body: bytes | None = None

    async def body(self) -> bytes:
        if self._body is None:
            self._body = await read_body(self.connection.reader, self.request.framing())
        return self._body

    async def json(self) -> Any:
        try:
            return json.loads(await self.body() or b"null")
        except ValueError:
            return None

    async def send(self, data: bytes) -> None:
        self.connection.writer.write(data)
        await self.connection.writer.drain()

    async def forward(self, body: bytes | None = None) -> bool:
        """Send the request on to the engine (with `body` in place of its own, if given) and
        its answer back; whether the connection may carry another request."""
        if body is None and self._body is not None:
            body = self._body
        return await self.connection.forward(self, body)

    async def finish(self) -> None:
        """Read what is left of the request body (an answer that did not need it)."""
        await self.body()


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        engine: str,
        intercept: Intercept,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.engine = engine
        self.intercept = intercept
        self._upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def serve(self) -> None:
        try:
            while (raw := await read_head(self.reader)) is not None:
                exchange = Exchange(self, parse_request(raw))
                if await self.intercept(exchange):
                    await exchange.finish()
                    keep = exchange.request.keep_alive
                else:
                    keep = await exchange.forward()
                if not keep:
                    break
        except ProtocolError as exc:
            log.info("node.protocol_error", error=str(exc))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await self.close()

    async def _engine(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._upstream is None or self._upstream[0].at_eof():
            await self._drop_upstream()
            self._upstream = await asyncio.open_unix_connection(self.engine, limit=MAX_HEAD)
        return self._upstream

    async def forward(self, exchange: Exchange, body: bytes | None) -> bool:
        request = exchange.request
        try:
            up_reader, up_writer = await self._engine()
        except OSError as exc:
            log.warning("node.engine_unreachable", engine=self.engine, error=str(exc))
            if body is None:
                await exchange.finish()
            message = f"nosana-cache: the engine at {self.engine} is unreachable: {exc}"
            await exchange.send(error_response(502, "Bad Gateway", message))
            return request.keep_alive
        if body is None:
            up_writer.write(request.raw)
            await copy_body(self.reader, up_writer, request.framing())
        else:
            up_writer.write(with_body(request, body))
        await up_writer.drain()
        return await self._answer(request, up_reader, up_writer)

    async def _answer(
        self, request: Request, up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter
    ) -> bool:
        while True:
            raw = await read_head(up_reader)
            if raw is None:
                raise ProtocolError("the engine closed the connection without an answer")
            response = parse_response(raw)
            self.writer.write(raw)
            if not 100 <= response.status < 200 or response.status == 101:
                break
        framing = response.framing(request.method)
        if response.status == 101 or framing[0] == "close":
            await splice(self.reader, self.writer, up_reader, up_writer)
            return False
        await copy_body(up_reader, self.writer, framing)
        if not response.keep_alive:
            await self._drop_upstream()
        return request.keep_alive and response.keep_alive

    async def _drop_upstream(self) -> None:
        if self._upstream is not None:
            writer = self._upstream[1]
            self._upstream = None
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        await self._drop_upstream()
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Both directions raw until the engine's side ends; the client's end of input is passed
    on as a half-close (a hijacked exec's stdin closing), as Docker expects it."""
    upward = asyncio.create_task(_pump(reader, up_writer, half_close=True))
    try:
        await _pump(up_reader, writer, half_close=False)
    finally:
        upward.cancel()
        await asyncio.gather(upward, return_exceptions=True)


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, half_close: bool
) -> None:
    try:
        while piece := await reader.read(PIECE):
            writer.write(piece)
            await writer.drain()
        if half_close and writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
