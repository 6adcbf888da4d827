"""A Docker engine that is there and runs nothing: it answers what a daemon asks at start-up
(`/version`, `/info`) and lists no containers, networks or images.

For tests of what the daemon does once an engine is reachable without a job running, such as
binding the containers' Hub listener (on `huggingface.mirror_address`), at the cost of a
loopback server rather than a real engine. Anything else it is asked is a 404, as an engine
answers for what it does not have, and is recorded.
"""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from .server import ThreadedServers

API_VERSION = "1.41"


class IdleEngine:
    def __init__(self, servers: ThreadedServers) -> None:
        self.asked: Counter[str] = Counter()
        self.url = servers.serve(self._app())
        self.host = self.url.replace("http://", "tcp://")
        """What `docker.host` is set to."""

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._answer)
        return app

    async def _answer(self, request: web.Request) -> web.Response:
        self.asked[f"{request.method} {request.path}"] += 1
        path = request.path.removeprefix(f"/v{API_VERSION}")
        if path == "/_ping":
            return web.Response(text="OK")
        if path == "/version":
            return web.json_response(
                {"Version": "20.10.24", "ApiVersion": API_VERSION, "MinAPIVersion": "1.12"}
            )
        if path == "/info":
            return web.json_response({"ID": "idle-engine", "Runtimes": {"runc": {}}})
        if request.method == "GET" and path in ("/containers/json", "/networks", "/images/json"):
            return web.json_response([])
        return web.json_response({"message": f"no such thing: {path}"}, status=404)
