"""A host that serves files by plain GET and HEAD, and refuses S3 listing (403 AccessDenied).

This is what a bucket behind a CDN or its own domain often looks like (models.nosana.io):
objects readable by URL, listing denied. With `listing=True` it also answers path-style
ListObjectsV2 (`/bucket?list-type=2&prefix=`), enough for boto3 and the daemon to treat it as
an S3 endpoint. It streams bodies (Range, ETag = MD5) through `send_content`, so it serves
throughput benchmarks without moto's copy of the whole object per ranged GET. A file can carry
a full-object CRC as S3 keeps one (every object written since late 2024 has a CRC64NVME), and
listings can be made to fail as a busy S3 fails them (`listing_faults`). With a `region`, a
request signed for another region is refused as S3 refuses it, naming the bucket's region.
"""

from __future__ import annotations

import base64
import re
from xml.sax.saxutils import escape

from aiohttp import web

from .content import Content
from .faults import Faults, Traffic, send_content
from .server import ThreadedServers

_DENIED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Access Denied</Message></Error>"
)


class StaticHost:
    def __init__(
        self, servers: ThreadedServers, *, listing: bool = False, region: str | None = None
    ) -> None:
        self.region = region  # signed requests must be signed for it, as S3 asks
        self.files: dict[str, Content] = {}
        self.checksums: dict[str, str] = {}  # path: the algorithm of the CRC S3 would keep
        self.etags: dict[str, str] = {}  # path: an ETag that is not the MD5 (SSE-KMS, say)
        self.faults: dict[str, Faults] = {}
        self.listing_faults = Faults()  # only fail_times, fail_status and retry_after apply
        self.traffic = Traffic()
        self.listing = listing
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        self.url = servers.serve(app)

    def put(
        self,
        path: str,
        content: bytes | Content,
        *,
        checksum: str | None = None,
        etag: str | None = None,
    ) -> Content:
        """Serve `content` at `path`; `checksum` names a full-object CRC S3 would keep of it
        (listed, and sent to a HEAD or whole GET in checksum mode), `etag` replaces the MD5."""
        data = content if isinstance(content, Content) else Content.of(content)
        path = path.lstrip("/")
        self.files[path] = data
        if checksum:
            self.checksums[path] = checksum
        if etag:
            self.etags[path] = etag
        return data

    def _etag(self, path: str, content: Content) -> str:
        return self.etags.get(path) or content.md5

    def _checksum_headers(self, path: str, content: Content) -> dict[str, str]:
        algorithm = self.checksums.get(path)
        if algorithm is None:
            return {}
        width = 8 if algorithm == "CRC64NVME" else 4
        value = base64.b64encode(content.crc(algorithm).to_bytes(width, "big")).decode()
        return {f"x-amz-checksum-{algorithm.lower()}": value, "x-amz-checksum-type": "FULL_OBJECT"}

    def _list(self, bucket: str, prefix: str) -> web.Response:
        """One page of every key under `bucket/prefix` (these fakes hold few files)."""
        base = f"{bucket.strip('/')}/"
        items = []
        for path, content in sorted(self.files.items()):
            key = path[len(base) :]
            if path.startswith(base) and key.startswith(prefix):
                algorithm = self.checksums.get(path)
                checksum = (
                    f"<ChecksumAlgorithm>{algorithm}</ChecksumAlgorithm>"
                    "<ChecksumType>FULL_OBJECT</ChecksumType>"
                    if algorithm
                    else ""
                )
                items.append(
                    f"<Contents><Key>{escape(key)}</Key><Size>{content.size}</Size>"
                    f'<ETag>"{self._etag(path, content)}"</ETag>{checksum}</Contents>'
                )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(items)}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>false</IsTruncated>{''.join(items)}</ListBucketResult>"
        )
        return web.Response(text=body, content_type="application/xml")

    def _is_bucket(self, path: str) -> bool:
        bucket = path.strip("/")
        return "/" not in bucket and any(p.startswith(f"{bucket}/") for p in self.files)

    def _failed_listing(self) -> web.Response:
        """A listing answered as S3 answers when it is too busy (503 SlowDown)."""
        faults = self.listing_faults
        faults.fail_times -= 1
        headers = {"Retry-After": faults.retry_after} if faults.retry_after is not None else {}
        code = "SlowDown" if faults.fail_status == 503 else "InternalError"
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code></Error>'
        return web.Response(
            status=faults.fail_status, text=body, content_type="application/xml", headers=headers
        )

    def _wrong_region(self, request: web.Request) -> web.Response | None:
        """S3's answer to a request signed for another region than the bucket's: an error
        naming the right one (in the body, and in a header for a HEAD, which has none)."""
        signed = re.search(
            r"Credential=[^/]+/\d+/([^/]+)/", request.headers.get("Authorization", "")
        )
        if self.region is None or signed is None or signed.group(1) == self.region:
            return None
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AuthorizationHeaderMalformed'
            f"</Code><Message>the region '{signed.group(1)}' is wrong; expecting "
            f"'{self.region}'</Message><Region>{self.region}</Region></Error>"
        )
        headers = {"x-amz-bucket-region": self.region}
        return web.Response(status=400, text=body, content_type="application/xml", headers=headers)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.traffic.requests[f"{request.method} {request.path}"] += 1
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        refused = self._wrong_region(request)
        if refused is not None:
            return refused
        if "list-type" in request.query:
            if not self.listing:
                return web.Response(status=403, text=_DENIED, content_type="application/xml")
            if self.listing_faults.fail_times > 0:
                return self._failed_listing()
            return self._list(request.match_info["path"], request.query.get("prefix", ""))
        path = request.match_info["path"]
        if request.method == "HEAD" and self.listing and self._is_bucket(path):
            return web.Response(status=200)  # HeadBucket, which s5cmd asks before listing
        content = self.files.get(path)
        if content is None:
            return web.Response(status=404, text="Not Found")
        headers = {
            "ETag": f'"{self._etag(path, content)}"',
            "Content-Type": "application/octet-stream",
        }
        if (
            request.headers.get("x-amz-checksum-mode") == "ENABLED"
            and "Range" not in request.headers
        ):
            headers |= self._checksum_headers(path, content)  # S3 sends none with a range
        return await send_content(request, content, self.faults.get(path), self.traffic, headers)
