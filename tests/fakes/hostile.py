"""An upstream that answers every kind of listing and manifest past the daemon's bounds: the
Hub's API (repo info, tree pages), S3 ListObjectsV2 and a registry's manifests, each as big or
as endless as the repo, bucket or model name asks. It counts what it was asked."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

from aiohttp import web

from daemon.util.limits import ENTRY_FILES, HUB_ANSWER_BYTES, OLLAMA_LAYERS, OLLAMA_MANIFEST_BYTES
from tests.fakes.server import ThreadedServers

SHA = "c0ffee" + "0" * 34
DIGEST = "sha256:" + "ab" * 32
PAGE = 1_000


class HostileUpstream:
    def __init__(self, servers: ThreadedServers) -> None:
        self.asked: Counter[str] = Counter()
        app = web.Application()
        app.router.add_get("/api/models/hostile/{name}/revision/{rev}", self._revision)
        app.router.add_get("/api/models/hostile/{name}/tree/{sha}", self._tree)
        app.router.add_get("/v2/library/{name}/manifests/{tag}", self._manifest)
        app.router.add_get("/{bucket}", self._listing)
        self.url = servers.serve(app)

    async def _revision(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.asked[f"revision {name}"] += 1
        if name == "huge-info":  # its Content-Length alone is past the bound
            return await _declared(request, HUB_ANSWER_BYTES.limit + 1)
        return web.json_response({"id": f"hostile/{name}", "sha": SHA, "siblings": []})

    async def _tree(self, request: web.Request) -> web.Response:
        """`many-files`: 1,000 files a page, pages without end; `endless`: empty pages."""
        name = request.match_info["name"]
        self.asked[f"tree {name}"] += 1
        page = int(request.query.get("cursor", "0"))
        files: list[dict[str, Any]] = []
        if name == "many-files":
            files = [
                {"type": "file", "path": f"f{page}/{i}", "size": 1, "oid": "a" * 40}
                for i in range(PAGE)
            ]
        base = f"{self.url}/api/models/hostile/{name}/tree/{SHA}?recursive=true"
        return web.json_response(files, headers={"Link": f'<{base}&cursor={page + 1}>; rel="next"'})

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.asked[f"manifest {name}"] += 1
        if name == "huge":
            return await _declared(request, OLLAMA_MANIFEST_BYTES.limit + 1)
        layer = {"mediaType": "application/vnd.ollama.image.model", "digest": DIGEST, "size": 1}
        count = OLLAMA_LAYERS.limit + 1 if name == "many-layers" else 1
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": layer,
            "layers": [layer] * count,
        }
        return web.Response(
            body=json.dumps(manifest).encode(),
            content_type="application/vnd.docker.distribution.manifest.v2+json",
        )

    async def _listing(self, request: web.Request) -> web.Response:
        """`many-keys`: 1,000 keys a page, truncated without end; `endless`: empty pages."""
        bucket = request.match_info["bucket"]
        self.asked[f"listing {bucket}"] += 1
        page = int(request.query.get("continuation-token", "0"))
        keys = PAGE if bucket == "many-keys" else 0
        items = "".join(
            f'<Contents><Key>p/{page}/{i}</Key><Size>1</Size><ETag>"{"0" * 32}"</ETag></Contents>'
            for i in range(keys)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{bucket}</Name><Prefix>p</Prefix><KeyCount>{keys}</KeyCount>"
            f"<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>{items}"
            f"<NextContinuationToken>{page + 1}</NextContinuationToken></ListBucketResult>"
        )
        return web.Response(text=body, content_type="application/xml")


async def _declared(request: web.Request, size: int) -> web.StreamResponse:
    """An answer whose `Content-Length` says `size`; what follows is never read."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = size
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        await response.write(b" " * 65536)
    return response


assert ENTRY_FILES.limit % PAGE == 0, "the tests count pages of 1,000"
