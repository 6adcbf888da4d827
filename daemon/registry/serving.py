"""A blob's answer to `HEAD` and `GET /v2/<name>/blobs/<digest>`: `Range`, and bytes streamed
from the store as they land.

As the Hub endpoint streams a file (hub/serving.py), but in the registry's words: headers
`Docker-Content-Digest`, `Content-Length`, `Accept-Ranges`, `Content-Type:
application/octet-stream`; one `bytes=` range answered 206, an unsatisfiable one 416. The bytes go
as ranges.py sends them for both endpoints: by `sendfile` when the blob is whole, else as it
is written (an engine unpacks while it downloads), a failure after the first byte cutting the
connection (the engine sees a short body, never a wrong one).
"""

from __future__ import annotations

from aiohttp import web

from .. import ranges
from ..ranges import Sent, Span
from ..store import FileStream


def blob_headers(digest: str) -> dict[str, str]:
    return {
        "Docker-Content-Digest": digest,
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Docker-Distribution-Api-Version": "registry/2.0",
    }


async def send(
    request: web.Request,
    stream: FileStream,
    headers: dict[str, str],
    span: Span,
    sent: Sent,
) -> web.StreamResponse:
    """Stream `[start, end)` of the blob (ranges.py: an error before the first byte is raised,
    one after cuts the connection); `sent` is told each count of bytes sent."""
    return await ranges.send(request, stream, headers, span, who="registry", sent=sent)
