"""A registry's token auth, in front of a real registry: what Docker Hub and ghcr.io do.

`GET /v2/...` without a valid token answers 401 with `WWW-Authenticate: Bearer realm=<this
server>/token,service=...,scope=repository:NAME:pull`; the token service gives a token for a
scope, anonymously or to a user with Basic credentials; a repository in `private` is readable
only with a user's token. Everything else is passed through, streamed, to the registry behind.

A token says it lives `lifetime` seconds (`expires_in`, as Docker Hub's 60), and every token
issued so far expires when the test calls `expire()`: which request meets an expired token is
the test's choice, never a race with a clock. Requests refused for an expired token are kept
in `refused_expired` (method, path and Range).
"""

from __future__ import annotations

import base64
import re
import secrets

from aiohttp import web

from .faults import Traffic
from .relay import Relay
from .server import ThreadedServers

SERVICE = "test-registry"
_REPO = re.compile(r"^/v2/(.+?)/(?:manifests|blobs)/")


class BearerGate:
    def __init__(
        self,
        servers: ThreadedServers,
        upstream: str,
        *,
        users: dict[str, str] | None = None,
        private: frozenset[str] = frozenset(),
        lifetime: int = 300,
    ) -> None:
        self.users = users or {}
        self.private = private
        self.lifetime = lifetime
        self.tokens: dict[str, tuple[str, str | None]] = {}  # token -> (repository, user)
        self.expired: set[str] = set()
        self.refused_expired: list[str] = []
        self.traffic = Traffic()
        app = web.Application()
        app.router.add_get("/token", self._token)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._relay = Relay(upstream, app)
        self.url = servers.serve(app)

    async def _token(self, request: web.Request) -> web.Response:
        self.traffic.requests["GET /token"] += 1
        user = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            name, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(name) != secret:
                return web.json_response({"details": "bad credentials"}, status=401)
            user = name
        scope = request.query.get("scope", "")
        match = re.fullmatch(r"repository:(.+):pull", scope)
        if request.query.get("service") != SERVICE or match is None:
            return web.json_response({"details": "bad scope or service"}, status=400)
        token = secrets.token_hex(16)
        self.tokens[token] = (match.group(1), user)
        return web.json_response({"token": token, "expires_in": self.lifetime})

    def expire(self) -> None:
        """Every token issued so far is past its expiry from now on."""
        self.expired |= set(self.tokens)

    def _allowed(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        held = (
            self.tokens.get(header.removeprefix("Bearer "))
            if header.startswith("Bearer ")
            else None
        )
        if held is None or header.removeprefix("Bearer ") in self.expired:
            return False
        match = _REPO.match(request.path)
        if match is None:
            return True  # /v2/ with any token
        repository, user = held
        return repository == match.group(1) and (user is not None or repository not in self.private)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.traffic.requests[f"{request.method} {request.path}"] += 1
        self.traffic.authorizations.append(request.headers.get("Authorization", ""))
        if not self._allowed(request):
            if request.headers.get("Authorization", "").removeprefix("Bearer ") in self.expired:
                asked = f"{request.method} {request.path} {request.headers.get('Range', '')}"
                self.refused_expired.append(asked.strip())
            match = _REPO.match(request.path)
            scope = f',scope="repository:{match.group(1)}:pull"' if match else ""
            challenge = f'Bearer realm="http://{request.host}/token",service="{SERVICE}"{scope}'
            body = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
            return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})
        return await self._relay.forward(request, drop=frozenset({"authorization"}))
