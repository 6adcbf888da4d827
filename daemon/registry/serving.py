"""A blob's answer to `HEAD` and `GET /v2/<name>/blobs/<digest>`: `Range`, and bytes streamed
from the store as they land.

As the Hub endpoint streams a file (hub/serving.py), but in the registry's words: headers
`Docker-Content-Digest`, `Content-Length`, `Accept-Ranges`, `Content-Type:
application/octet-stream`; one `bytes=` range answered 206, an unsatisfiable one 416. A blob
whole in the store goes by `sendfile`; one still arriving is sent as it is written, so an
engine unpacks while it downloads. A failure after the first byte cuts the connection: the
engine sees a short body, never a wrong one (the store checks the digest before the last
byte is given out).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..errors import NosanaCacheError
from ..logs import get_logger
from ..store import FileStream

log = get_logger(__name__)

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    """A `Range` that asks for no byte of the blob (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`[start, end)` of a single `bytes=` range, clipped to the blob; None for all of it."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        raise Unsatisfiable
    return start, end


def blob_headers(digest: str) -> dict[str, str]:
    return {
        "Docker-Content-Digest": digest,
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Docker-Distribution-Api-Version": "registry/2.0",
    }


Sent = Callable[[int], None]
"""Told each count of bytes sent (a pull's tally, pulls.py)."""


def _ignore(count: int) -> None:
    return None


async def send(
    request: web.Request,
    stream: FileStream,
    headers: dict[str, str],
    span: tuple[int, int, bool],
    sent: Sent = _ignore,
) -> web.StreamResponse:
    """Stream `[start, end)`; an error before the first byte is raised, one after cuts."""
    start, end, _partial = span
    blob = stream.committed_blob()
    if blob is not None:
        return await _sendfile(request, blob, headers, span, stream.size, sent)
    chunks = stream.chunks(start, end)
    first = await anext(chunks, b"")  # a fetch that fails at once still gets its status
    response = _response(headers, span, stream.size)
    await response.prepare(request)
    try:
        if first:
            await response.write(first)
            sent(len(first))
        async for chunk in chunks:
            await response.write(chunk)
            sent(len(chunk))
        await response.write_eof()
    except NosanaCacheError as exc:
        log.warning("registry.body_cut", source=stream.entry.source, error=exc.message)
        if request.transport is not None:
            request.transport.abort()
    except (ConnectionResetError, ConnectionError):
        log.info("registry.client_left", source=stream.entry.source)
    finally:
        await chunks.aclose()
    return response


def _response(
    headers: dict[str, str], span: tuple[int, int, bool], size: int
) -> web.StreamResponse:
    start, end, partial = span
    response = web.StreamResponse(status=206 if partial else 200, headers=headers)
    response.content_length = end - start
    if partial:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return response


async def _sendfile(
    request: web.Request,
    blob: Path,
    headers: dict[str, str],
    span: tuple[int, int, bool],
    size: int,
    sent: Sent,
) -> web.StreamResponse:
    """A blob whole in the store goes by `sendfile`; the reader's lease keeps it meanwhile."""
    start, end, _partial = span
    response = _response(headers, span, size)
    handle = await asyncio.to_thread(open, blob, "rb")
    try:
        await response.prepare(request)
        if end > start and request.transport is not None:
            await asyncio.get_running_loop().sendfile(request.transport, handle, start, end - start)
            sent(end - start)
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        log.info("registry.client_left", blob=str(blob))
    finally:
        await asyncio.to_thread(handle.close)
    return response
