"""A CAS bridge as the Hub's LFS files redirect to: signed URLs that expire, refused as S3 does.

The real Hub answers a file's resolve URL with a 302 to `cas-bridge.xethub.hf.co/...?...`, a
query signed twice over: S3's presigned `X-Amz-*` (`X-Amz-Expires=3600`, a credential with
`%2F` in it, a `response-content-disposition` with `%27`, `%3B` and `+`) and CloudFront's
`Expires`/`Policy`/`Signature`/`Key-Pair-Id`. Past its expiry the bridge answers 403 with
S3's XML (`AccessDenied: Request has expired`); a URL changed by a byte, 403
`SignatureDoesNotMatch`. This one signs the exact raw query (an HMAC over the bytes of path
and query up to `&Signature=`, checked on the raw request target), carries the expiry in the
query against a clock the test moves (`advance`), honours Range (send_content) and takes
faults matched by a substring of `"<sha256> <Range>"`, as FaultyProxy's are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, quote

from aiohttp import web

from .content import Content
from .faults import Faults, Traffic, send_content
from .server import ThreadedServers

TTL = 3600
_PREFIX = "/xet-bridge-us"


class CasBridge:
    def __init__(self, servers: ThreadedServers) -> None:
        self.now = 1_800_000_000.0
        """The bridge's clock (epoch seconds): a URL signed at `now` expires at `now + TTL`."""
        self.refuse_all = False
        """Refuse every URL, however freshly signed (a bridge that rotated its key)."""
        self.files: dict[str, Content] = {}
        self.faults: dict[str, Faults] = {}
        self.traffic = Traffic()
        self.asked: list[tuple[str, str]] = []
        """(Range, what was answered: `206`, `200`, `expired` or `bad signature`) per GET."""
        self._key = b"cas-bridge-test-key"
        app = web.Application()
        app.router.add_route("*", f"{_PREFIX}/{{repo}}/{{sha}}", self._serve)
        self.url = servers.serve(app)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def signed_url(self, content: Content, filename: str, repo: str) -> str:
        """Where the Hub redirects a GET of `content`: valid for TTL seconds from `now`."""
        self.files[content.sha256] = content
        expires = int(self.now) + TTL
        day = time.strftime("%Y%m%d", time.gmtime(self.now))
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.now))
        epoch = {"AWS:EpochTime": expires}  # 79 bytes of JSON: its base64 ends in `==`
        policy = json.dumps({"Statement": [{"Condition": {"DateLessThan": epoch}}]})
        query = "&".join(
            [
                "X-Amz-Content-Sha256=UNSIGNED-PAYLOAD",
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                f"X-Amz-Credential=cas%2F{day}%2Fus-east-1%2Fs3%2Faws4_request",
                f"X-Amz-Date={stamp}",
                f"X-Amz-Expires={TTL}",
                "X-Amz-SignedHeaders=host",
                "response-content-disposition=inline%3B+filename*%3DUTF-8%27%27"
                f"{quote(filename, safe='')}%3B",
                "x-id=GetObject",
                f"Expires={expires}",
                f"Policy={base64.b64encode(policy.encode()).decode()}",
                "Key-Pair-Id=K2L8F4GPSG1IFC",
            ]
        )
        repo_hash = hashlib.sha256(repo.encode()).hexdigest()[:16]
        path = f"{_PREFIX}/{repo_hash}/{content.sha256}"
        return f"{self.url}{path}?{query}&Signature={self._sign(path, query)}"

    def _sign(self, path: str, query: str) -> str:
        return hmac.new(self._key, f"{path}?{query}".encode(), hashlib.sha256).hexdigest()

    def _refusal(self, request: web.Request) -> str | None:
        """Why the raw request target is refused: its bytes, or its expiry; None if valid."""
        path, _, query = request.raw_path.partition("?")
        signed, _, signature = query.rpartition("&Signature=")
        if self.refuse_all or not hmac.compare_digest(signature, self._sign(path, signed)):
            return "bad signature"
        expires = parse_qs(signed).get("Expires", ["0"])[0]
        return "expired" if not expires.isdigit() or self.now > int(expires) else None

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.traffic.requests[f"{request.method} {request.path}"] += 1
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        asked = request.headers.get("Range", "")
        refusal = self._refusal(request)
        if refusal is not None:
            self.asked.append((asked, refusal))
            return _denied(refusal, self.now)
        content = self.files.get(request.match_info["sha"])
        if content is None:
            return web.Response(status=404, text="no such object")
        self.asked.append((asked, "206" if asked else "200"))
        faults = next((f for k, f in self.faults.items() if k in f"{content.sha256} {asked}"), None)
        headers = {"ETag": f'"{content.sha256}"', "Content-Type": "application/octet-stream"}
        return await send_content(request, content, faults, self.traffic, headers)


def _denied(refusal: str, now: float) -> web.Response:
    if refusal == "expired":
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        detail = (
            f"<Code>AccessDenied</Code><Message>Request has expired</Message>"
            f"<X-Amz-Expires>{TTL}</X-Amz-Expires><ServerTime>{at}</ServerTime>"
        )
    else:
        detail = (
            "<Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated "
            "does not match the signature you provided.</Message>"
        )
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{detail}</Error>'
    return web.Response(status=403, text=body, content_type="application/xml")
