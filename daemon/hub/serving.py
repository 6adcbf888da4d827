"""A file's answer to `HEAD` and `GET /{repo}/resolve/{rev}/{path}`: the Hub's headers, `Range`,
and bytes streamed from the store as they land.

The headers are what the clients read: `X-Repo-Commit`, `ETag` (the git blob id, or the LFS
sha256, also as `X-Linked-Etag` with `X-Linked-Size`), `Content-Length`, `Accept-Ranges`.
The Hub redirects LFS files to a content host; this endpoint is both, so it answers `200` (or
`206` for a `Range`) itself, which every client follows the same way. TGI's Rust client reads
a file's size from the `Content-Range` of a `Range: bytes=0-0` GET: answered as the Hub's
content host answers it.

A body is sent as it arrives in the store (ranges.py, shared with the registry endpoint).
Failures before the first byte are the Hub's errors; after it, the status is sent already, so
the connection is cut and the client sees a short body (which it checks, and resumes with
`Range`).
"""

from __future__ import annotations

from aiohttp import web

from .. import ranges
from ..ranges import Span, Unsatisfiable, parse_range
from ..sources.hub_listing import ListedEntry, Listing
from ..store import FileStream
from .problems import hub_error


def file_headers(listing: Listing, entry: ListedEntry) -> dict[str, str]:
    """The headers the Hub gives a file, whatever the method and status."""
    headers = {
        "X-Repo-Commit": listing.commit,
        "ETag": f'"{entry.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    if entry.lfs is not None:
        headers["X-Linked-Etag"] = headers["ETag"]
        headers["X-Linked-Size"] = str(entry.size)
    return headers


async def head(request: web.Request, listing: Listing, entry: ListedEntry) -> web.StreamResponse:
    """Everything a client wants to know before it downloads, from the listing alone."""
    response = web.StreamResponse(headers=file_headers(listing, entry))
    response.content_length = entry.size
    await response.prepare(request)
    return response


def wanted(request: web.Request, listing: Listing, entry: ListedEntry) -> Span | web.Response:
    """`(start, end, partial)` of what a GET asks for, or the 416 answer."""
    size = entry.size
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
    request: web.Request, stream: FileStream, headers: dict[str, str], span: Span
) -> web.StreamResponse:
    """Stream `[start, end)` of the file (ranges.py: an error before the first byte is
    raised, for the caller to answer as the Hub does; one after cuts the connection)."""
    return await ranges.send(request, stream, headers, span, who="hub")
