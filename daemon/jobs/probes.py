"""One health check on the wire, against the port the engine published, as Nosana's node
runs it (there with curl, from a container beside the op's):

- http: `method` to `path` with `headers`, and `body` for POST and PUT (a string as it is,
  anything else as JSON); redirects are not followed; it passes when the status is
  `expected_status`.
- websocket: a WebSocket handshake to the port's root; it passes when `expected_response`
  is in what the service sent back (its handshake answer and the first frames).

The host is the daemon's own (`docker.publish_host`, loopback for the unspecified address)
and the job's `path` only ever becomes the path and query of that URL. Every failure of the
network becomes an answer in words (`connection refused`, `no answer within 30s`): nothing of
aiohttp leaves this module.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from .health import Answer
from .models import EndpointRecord
from .ports import HealthCheck, HttpHealthCheck, WebSocketHealthCheck

ATTEMPT_TIMEOUT = 30.0
"""A check that has not answered after this long has failed (Nosana's curl waits forever;
a port that accepts and never answers must not stall the op's checks)."""
WEBSOCKET_LISTEN = 1.0
"""After a handshake, how long the first frames are waited for."""
_EXCERPT = 120


class Prober:
    """Runs checks for one op; owns the HTTP session they share."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        self.session = session
        self.timeout = timeout

    async def __call__(self, endpoint: EndpointRecord, check: HealthCheck) -> Answer:
        if endpoint.address is None:
            return Answer(False, "not published")
        host, port = _reachable(endpoint.address)
        try:
            async with asyncio.timeout(self.timeout):
                if isinstance(check, HttpHealthCheck):
                    return await self._http(host, port, check)
                return await _websocket(host, port, check)
        except TimeoutError:
            return Answer(False, f"no answer within {self.timeout:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            return Answer(False, _reason(exc))

    async def _http(self, host: str, port: int, check: HttpHealthCheck) -> Answer:
        data: str | None = None
        if check.body is not None and check.method in ("POST", "PUT"):
            data = check.body if isinstance(check.body, str) else json.dumps(check.body)
        async with self.session.request(
            check.method,
            _url(host, port, check.path),
            headers=check.headers,
            data=data,
            allow_redirects=False,
        ) as response:
            passed = response.status == check.expected_status
            text = f"{response.status} {response.reason or ''}".strip()
            if not passed:
                body = (await response.content.read(_EXCERPT)).decode(errors="replace")
                text += f": {_one_line(body)}" if body.strip() else ""
            return Answer(passed, text)


@asynccontextmanager
async def prober(timeout: float = ATTEMPT_TIMEOUT) -> AsyncIterator[Prober]:
    """A `Prober` with its own session: no proxies from the environment (the port is the
    daemon's own), no cookies kept between checks."""
    session = aiohttp.ClientSession(trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
    try:
        yield Prober(session, timeout)
    finally:
        await session.close()


async def _websocket(host: str, port: int, check: WebSocketHealthCheck) -> Answer:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        writer.write(
            (
                f"GET / HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        seen = await _read_answer(reader, check.expected_response.encode())
    finally:
        writer.close()
    text = seen.decode(errors="replace")
    if not text:
        return Answer(False, "closed without an answer")
    first_line = text.split("\r\n", 1)[0]
    return Answer(check.expected_response in text, _one_line(first_line))


async def _read_answer(reader: asyncio.StreamReader, expected: bytes) -> bytes:
    """The handshake's answer, then what comes within `WEBSOCKET_LISTEN` (the first frames),
    or less once `expected` has been seen."""
    seen = b""
    while b"\r\n\r\n" not in seen and len(seen) < 16384:
        chunk = await reader.read(4096)
        if not chunk:
            return seen
        seen += chunk
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WEBSOCKET_LISTEN):
            while expected not in seen and len(seen) < 65536:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                seen += chunk
    return seen


def _url(host: str, port: int, path: str) -> URL:
    """`path` (and its query) on the published port; never another host."""
    path, _, query = path.partition("#")[0].partition("?")
    return URL.build(
        scheme="http",
        host=host,
        port=port,
        path=path if path.startswith("/") else f"/{path}",
        query_string=query,
    )


def _reachable(address: str) -> tuple[str, int]:
    """Where to connect for a published `host:port`: the unspecified address (published on
    every interface) is reached through loopback."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if ipaddress.ip_address(host).is_unspecified:
        host = "::1" if ":" in host else "127.0.0.1"
    return host, int(port)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError | aiohttp.ClientConnectorError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | aiohttp.ServerDisconnectedError):
        return "connection closed without an answer"
    return _one_line(str(exc)) or type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_EXCERPT]
