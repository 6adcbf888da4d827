"""The upstreams of the benchmarks, in a process of their own so they do not share a GIL with
the tools being measured.

    python -m bench.servers SPEC_FILE

SPEC_JSON: {"repos": {"bench/model": {"path": [size, seed], ...}, ...},
            "bucket": "bench", "objects": {"key": [size, seed], ...},
            "public_cdn": "http://127.0.0.1:PORT"}  (optional: the hub's redirects go there)
A repo given a list of such file maps gets one commit per map, in order (main moves on).
Prints one JSON line with the URLs and each file's sha256, then serves until stdin closes.
`GET {traffic}` answers how many body bytes the hub and its content host have sent so far.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aiohttp import web

from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.fakes.server import ThreadedServers
from tests.fakes.static_host import StaticHost


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    servers = ThreadedServers()
    servers.start()
    hub = FakeHub(servers)
    hub.tree_page_size = 1000  # as the real Hub pages its tree
    cdn_direct = hub.cdn_url
    if spec.get("public_cdn"):  # through a link: LFS files redirect to its listener
        hub.cdn_url = spec["public_cdn"]
    static = StaticHost(servers, listing=True)
    traffic = servers.serve(_traffic_app(hub))
    repos: dict[str, dict[str, str]] = {}
    commits: dict[str, list[str]] = {}
    for repo, spec_files in spec.get("repos", {}).items():
        for files in spec_files if isinstance(spec_files, list) else [spec_files]:
            contents = {path: Content.generated(size, seed) for path, (size, seed) in files.items()}
            commits.setdefault(repo, []).append(hub.commit(repo, dict(contents)))
            repos[repo] = {path: c.sha256 for path, c in contents.items()}
    objects = {}
    for key, (size, seed) in spec.get("objects", {}).items():
        # As S3 keeps of every object written since late 2024: a CRC64NVME of the whole.
        content = static.put(
            f"{spec['bucket']}/{key}", Content.generated(size, seed), checksum="CRC64NVME"
        )
        objects[key] = content.sha256
    print(
        json.dumps(
            {
                "hub": hub.url,
                "cdn": cdn_direct,
                "static": static.url,
                "traffic": traffic,
                "repos": repos,
                "commits": commits,
                "objects": objects,
            }
        ),
        flush=True,
    )
    sys.stdin.read()
    servers.stop()


def _traffic_app(hub: FakeHub) -> web.Application:
    async def sent(request: web.Request) -> web.Response:
        return web.json_response({"hub": hub.traffic.body_bytes, "cdn": hub.cdn_traffic.body_bytes})

    app = web.Application()
    app.router.add_get("/", sent)
    return app


if __name__ == "__main__":
    main()
