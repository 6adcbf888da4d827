"""A stored file's bytes over HTTP: one `bytes=` range, and the body streamed as it lands.

Shared by the two endpoints that serve the store to clients, the Hub's (hub/serving.py) and the
registry's (registry/serving.py), each with its own headers and error shapes. A file whole in
the store goes by `sendfile` (no copy through Python, as aiohttp's FileResponse); one still
arriving is sent as the store writes it, so a client reads while the daemon downloads, by
`sendfile` too, span by span, each once its bytes are on disk (store/reading.py). A
failure before the first byte is raised (the caller answers it in its protocol's words); after
it, the status is out already, so the connection is cut and the client sees a short body,
never a wrong one (the store checks the digest before it gives out the last byte).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from .errors import NosanaCacheError
from .logs import get_logger
from .store import FileStream

log = get_logger(__name__)

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
MAX_DIGITS = 18
"""Digits that can name a byte of any file (10**18 bytes is an exabyte); a position with more
is past the end of every file, and is read as such, not by `int()` (which takes at most 4,300
digits, and a header of 8,000 is allowed)."""
_BEYOND = 10**MAX_DIGITS

Span = tuple[int, int, bool]
"""`(start, end, partial)`: the bytes `[start, end)`, and whether they answer a `Range`."""
Sent = Callable[[int], None]
"""Told each count of bytes sent (the registry's pull tally)."""


class Unsatisfiable(Exception):
    """A `Range` that asks for no byte of the file (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`[start, end)` of a single `bytes=` range, clipped to the file; None to send it whole
    (no header, or one not taken here: several ranges, other units)."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        start, end = max(0, size - _position(last)), size
    else:
        start = _position(first)
        end = min(size, _position(last) + 1) if last else size
    if start >= size or start >= end:
        raise Unsatisfiable
    return start, end


def _position(digits: str) -> int:
    """A byte position of a `Range`: its value, or `_BEYOND` if it has too many digits."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= MAX_DIGITS else _BEYOND


def _ignore(count: int) -> None:
    return None


async def send(
    request: web.Request,
    stream: FileStream,
    headers: dict[str, str],
    span: Span,
    *,
    who: str,
    sent: Sent = _ignore,
) -> web.StreamResponse:
    """Stream `[start, end)` of the file; `who` names the log events (`hub`, `registry`)."""
    start, end, _partial = span
    blob = stream.committed_blob()
    if blob is not None:
        return await _sendfile(request, blob, headers, span, stream.size, who, sent)
    spans = stream.spans(start, end)
    first = await anext(spans, None)  # a fetch that fails at once still gets its status
    response = _response(headers, span, stream.size)
    await response.prepare(request)
    try:
        if first is not None:
            await _send_span(request, stream, first, sent)
        async for item in spans:
            await _send_span(request, stream, item, sent)
        await response.write_eof()
    except NosanaCacheError as exc:
        log.warning(f"{who}.body_cut", path=stream.path, error=exc.message)
        if request.transport is not None:
            request.transport.abort()  # the client sees fewer bytes than Content-Length
    except (ConnectionResetError, ConnectionError):
        log.info(f"{who}.client_left", path=stream.path)
    finally:
        await spans.aclose()
    return response


async def _send_span(
    request: web.Request, stream: FileStream, span: tuple[int, int, int], sent: Sent
) -> None:
    """Bytes on disk of a file still arriving, by `sendfile` as a whole blob's go: one
    thread hop, one copy into Python and one out of it fewer for every mebibyte."""
    fd, offset, count = span
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client left")  # loop.sendfile would say RuntimeError
    with open(fd, "rb", buffering=0, closefd=False) as handle:
        done = await asyncio.get_running_loop().sendfile(transport, handle, offset, count)
    if done != count:
        raise stream.short(offset + done)
    sent(count)


def _response(headers: dict[str, str], span: Span, size: int) -> web.StreamResponse:
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
    span: Span,
    size: int,
    who: str,
    sent: Sent,
) -> web.StreamResponse:
    """A file whole in the store; the reader's lease keeps the blob meanwhile."""
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
        log.info(f"{who}.client_left", blob=str(blob))
    finally:
        await asyncio.to_thread(handle.close)
    return response
