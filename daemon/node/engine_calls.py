"""The few questions the daemon itself asks the node's engine (a volume's mount point), over
the same unix socket, one short connection each."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import quote

from ..errors import EngineError, EngineUnavailable
from .http1 import MAX_HEAD, ProtocolError, parse_response, read_body, read_head

TIMEOUT = 30.0


async def engine_get(engine: str, path: str) -> tuple[int, Any]:
    """`GET path` on the engine: its status and JSON body."""
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(engine, limit=MAX_HEAD)
            try:
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                raw = await read_head(reader)
                if raw is None:
                    raise ProtocolError("no answer")
                response = parse_response(raw)
                kind, length = response.framing("GET")
                if kind == "close":
                    body = await reader.read(4 * 1024 * 1024)
                else:
                    body = await read_body(reader, (kind, length))
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        raise EngineUnavailable(f"the engine at {engine} is unreachable: {exc}") from exc
    except (ProtocolError, asyncio.IncompleteReadError) as exc:
        raise EngineError(f"the engine at {engine} answered {path} badly: {exc}") from exc
    try:
        return response.status, json.loads(body or b"null")
    except ValueError:
        return response.status, None


async def volume_mountpoint(engine: str, name: str) -> str | None:
    status, body = await engine_get(engine, f"/volumes/{quote(name, safe='')}")
    if status != 200 or not isinstance(body, dict):
        return None
    mountpoint = body.get("Mountpoint")
    return mountpoint if isinstance(mountpoint, str) and mountpoint else None
