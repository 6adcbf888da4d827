"""A file's answer to `HEAD` and `GET /{repo}/resolve/{rev}/{path}`: the Hub's headers, `Range`,
and bytes streamed from the store as they land.

The headers are what the clients read: `X-Repo-Commit`, `ETag` (the git blob id, or the LFS
sha256, also as `X-Linked-Etag` with `X-Linked-Size`), `Content-Length`, `Accept-Ranges`.
The Hub redirects LFS files to a content host; this endpoint is both, so it answers `200` (or
`206` for a `Range`) itself, which every client follows the same way. TGI's Rust client reads
a file's size from the `Content-Range` of a `Range: bytes=0-0` GET: answered as the Hub's
content host answers it.

A body is sent as it arrives in the store (reading.py). Failures before the first byte are the
Hub's errors; after it, the status is sent already, so the connection is cut and the client
sees a short body (which it checks, and resumes with `Range`).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from ..errors import NosanaCacheError
from ..logs import get_logger
from ..sources.hub_listing import Listing, etag_of
from ..store import FileStream
from .problems import hub_error

log = get_logger(__name__)

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
MAX_DIGITS = 18
"""Digits that can name a byte of any file (10**18 bytes is an exabyte); a position with more
is past the end of every file, and is read as such, not by `int()` (which takes at most 4,300
digits, and a header of 8,000 is allowed)."""
_BEYOND = 10**MAX_DIGITS


class Unsatisfiable(Exception):
    """A `Range` that asks for no byte of the file (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`[start, end)` of a single `bytes=` range, clipped to the file; None to send it whole
    (no header, or one this endpoint does not take: several ranges, other units)."""
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


def file_headers(listing: Listing, entry: dict[str, Any]) -> dict[str, str]:
    """The headers the Hub gives a file, whatever the method and status."""
    headers = {
        "X-Repo-Commit": listing.commit,
        "ETag": f'"{etag_of(entry)}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    if isinstance(entry.get("lfs"), dict):
        headers["X-Linked-Etag"] = headers["ETag"]
        headers["X-Linked-Size"] = str(entry["size"])
    return headers


async def head(request: web.Request, listing: Listing, entry: dict[str, Any]) -> web.StreamResponse:
    """Everything a client wants to know before it downloads, from the listing alone."""
    response = web.StreamResponse(headers=file_headers(listing, entry))
    response.content_length = int(entry["size"])
    await response.prepare(request)
    return response


def wanted(
    request: web.Request, listing: Listing, entry: dict[str, Any]
) -> tuple[int, int, bool] | web.Response:
    """`(start, end, partial)` of what a GET asks for, or the 416 answer."""
    size = int(entry["size"])
    try:
        span = parse_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        answer = hub_error(416, f"range not satisfiable: the file has {size} bytes")
        answer.headers["Content-Range"] = f"bytes */{size}"
        answer.headers["X-Repo-Commit"] = listing.commit
        return answer
    if span is None:
        return 0, size, False
    return span[0], span[1], True


async def send(
    request: web.Request,
    stream: FileStream,
    headers: dict[str, str],
    span: tuple[int, int, bool],
) -> web.StreamResponse:
    """Stream `[start, end)` of the file; an error before the first byte is raised (the
    caller answers it), one after cuts the connection."""
    start, end, partial = span
    blob = stream.committed_blob()
    if blob is not None:
        return await _sendfile(request, blob, headers, span, stream.size)
    chunks = stream.chunks(start, end)
    first = await anext(chunks, b"")  # a fetch that fails at once still gets its status
    response = web.StreamResponse(status=206 if partial else 200, headers=headers)
    response.content_length = end - start
    if partial:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{stream.size}"
    await response.prepare(request)
    try:
        if first:
            await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except NosanaCacheError as exc:
        log.warning("hub.body_cut", path=stream.path, error=exc.message)
        _cut(request)
    except (ConnectionResetError, ConnectionError):
        log.info("hub.client_left", path=stream.path)
    finally:
        await chunks.aclose()
    return response


async def _sendfile(
    request: web.Request,
    blob: Path,
    headers: dict[str, str],
    span: tuple[int, int, bool],
    size: int,
) -> web.StreamResponse:
    """A file that is whole in the store goes by `sendfile` (no copy through Python), as
    aiohttp's FileResponse sends one; the reader's lease keeps the blob meanwhile."""
    start, end, partial = span
    response = web.StreamResponse(status=206 if partial else 200, headers=headers)
    response.content_length = end - start
    if partial:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    handle = await asyncio.to_thread(open, blob, "rb")
    try:
        await response.prepare(request)
        if end > start and request.transport is not None:
            await asyncio.get_running_loop().sendfile(request.transport, handle, start, end - start)
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        log.info("hub.client_left", path=str(blob))
    finally:
        await asyncio.to_thread(handle.close)
    return response


def _cut(request: web.Request) -> None:
    """End the connection mid-body: the client sees fewer bytes than `Content-Length`."""
    if request.transport is not None:
        request.transport.abort()
