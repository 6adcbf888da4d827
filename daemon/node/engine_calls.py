"""The few questions the daemon itself asks the node's engine (a volume's mount point, its
registry mirrors, whether it is Podman, a pull of the endpoint's name and its tags), over the
same unix socket, one short connection each."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from ..engine.libpod import libpod_api
from ..errors import EngineError, EngineUnavailable
from .http1 import (
    MAX_HEAD,
    ProtocolError,
    Response,
    body_pieces,
    parse_response,
    read_head,
)

TIMEOUT = 30.0
MAX_ANSWER = 4 * 1024 * 1024


@contextlib.asynccontextmanager
async def engine_stream(
    engine: str, method: str, target: str, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[Response, AsyncIterator[bytes]]]:
    """`method target` on the engine (no body): its answer's head and its body's pieces as
    they come (a pull's progress), the connection closed on leaving."""
    lines = [f"{method} {target} HTTP/1.1", "Host: d", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if method == "POST":
        lines.append("Content-Length: 0")
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(engine, limit=MAX_HEAD)
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            raw = await read_head(reader)
    except (OSError, TimeoutError) as exc:
        raise EngineUnavailable(f"the engine at {engine} is unreachable: {exc}") from exc
    try:
        if raw is None:
            raise EngineError(f"the engine at {engine} closed {target} without an answer")
        response = parse_response(raw)
        yield response, body_pieces(reader, response.framing(method))
    except (ProtocolError, asyncio.IncompleteReadError) as exc:
        raise EngineError(f"the engine at {engine} answered {target} badly: {exc}") from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def engine_call(engine: str, method: str, target: str) -> tuple[int, Any]:
    """`method target` on the engine: its status and JSON body."""
    try:
        async with asyncio.timeout(TIMEOUT):
            async with engine_stream(engine, method, target) as (response, pieces):
                body = b""
                async for piece in pieces:
                    body += piece
                    if len(body) > MAX_ANSWER:
                        raise EngineError(f"the engine's answer to {target} is too long")
    except TimeoutError as exc:
        raise EngineUnavailable(f"the engine at {engine} did not answer {target}") from exc
    try:
        return response.status, json.loads(body or b"null")
    except ValueError:
        return response.status, None


async def engine_get(engine: str, path: str) -> tuple[int, Any]:
    """`GET path` on the engine: its status and JSON body."""
    return await engine_call(engine, "GET", path)


async def volume_mountpoint(engine: str, name: str) -> str | None:
    status, body = await engine_get(engine, f"/volumes/{quote(name, safe='')}")
    if status != 200 or not isinstance(body, dict):
        return None
    mountpoint = body.get("Mountpoint")
    return mountpoint if isinstance(mountpoint, str) and mountpoint else None


async def registry_mirrors(engine: str) -> list[str]:
    """The engine's own registry-mirrors (`GET /info`), as pull_routes weighs them."""
    status, body = await engine_get(engine, "/info")
    if status != 200 or not isinstance(body, dict):
        return []
    mirrors = (body.get("RegistryConfig") or {}).get("Mirrors") or []
    return [str(m) for m in mirrors]


async def libpod_api_of(engine: str) -> str | None:
    """Podman's libpod API version (`GET /version`), None for Docker."""
    status, body = await engine_get(engine, "/version")
    if status != 200 or not isinstance(body, dict):
        return None
    return libpod_api(body)
