"""The node's image pulls (`POST /images/create?fromImage=X&tag=Y`) through the registry
endpoint, where pull_routes sends the daemon's own pull of the same reference.

The node's engine is asked for the endpoint's name (`127.0.0.1:9812/library/ubuntu:latest`),
the node's credentials (`X-Registry-Auth`) addressed to the endpoint as the daemon's own pulls
address them; the progress is passed on line by line as it comes (the engine's own lines, the
endpoint's name in a status replaced by the node's); then the image is tagged as the node
asked and the endpoint's tag removed, and only then the answer ended: the node reads the
stream to its end and uses the image by its name at once. On Podman the endpoint's name is
pulled with libpod's pull, TLS not verified for it alone (engine/libpod.py), its report lines
passed on as Docker's progress events. A failure reads as the engine's own with the
endpoint's cause added: in the stream (`{"errorDetail":{"message"},"error"}`), or as the
engine's status and `{"message"}` when it refused before streaming. An endpoint the
engine cannot reach is given up (pull_routes) and the request sent on as it came.

Passed through unchanged: a route other than the endpoint (the endpoint off, a digest, the
rules of pull_routes), an import (`fromSrc`), a pull of every tag (no tag given), credentials
that are a token (they cannot be re-addressed), and a registry at a private address
(`security.allow_private_urls`: the daemon would fetch it for a job; the engine pulls it
itself, as without the cache).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, urlencode

from yarl import URL

from ..engine import libpod
from ..engine.pull_routes import (
    UNREACHABLE_HINT,
    Credentials,
    ImageRef,
    PullRoutes,
    Route,
    because,
)
from ..errors import EngineError, EngineUnavailable, UnsafeUpstream
from ..logs import get_logger
from ..sources.netguard import check_host
from .engine_calls import engine_call, engine_stream, libpod_api_of, registry_mirrors
from .http1 import LAST_CHUNK, Request, chunk, error_response
from .proxy import Exchange

log = get_logger(__name__)

STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\nApi-Version: 1.41\r\n\r\n"
)
MAX_LINE = 1024 * 1024
"""A progress line longer than this is passed on unread (Docker's are a few hundred bytes)."""
_PLAIN_AUTH = {"username", "password", "serveraddress", "email"}


class NodePulls:
    def __init__(
        self,
        engine: str,
        routes: PullRoutes,
        explain: Callable[[str], str | None],
        *,
        allow_private: bool,
    ) -> None:
        self.engine = engine
        self.routes = routes
        self.explain = explain
        self.allow_private = allow_private

    async def __call__(self, exchange: Exchange) -> bool:
        """Pull through the endpoint and answer (True), or leave the request as it came."""
        plan = await self._plan(exchange.request)
        if plan is None:
            return False
        image, route, api = plan
        await exchange.finish()
        log.info("node.image_pulling", image=image.original, source=route.source, libpod=api)
        target = _create_target(exchange.request, route, api)
        started = False
        try:
            async with engine_stream(self.engine, "POST", target, _auth(route)) as (head, body):
                if head.status != 200:
                    return await self._refused(exchange, image, route, head.status, body)
                await exchange.send(STREAM_HEAD)
                started = True
                failed = await self._relay(exchange, image, route, body, podman=api is not None)
            if failed is None:  # the engine cannot use the endpoint: the node's own pull
                await self._as_asked(exchange)
                await exchange.send(LAST_CHUNK)
                return True
        except EngineError as exc:
            if not started:
                await exchange.send(error_response(502, "Bad Gateway", f"nosana-cache: {exc}"))
                return True
            await exchange.send(chunk(_error_line(f"nosana-cache: {exc}")))  # cut part way
            failed = True
        if not failed:
            problem = await self._retag(image, route)
            if problem is not None:
                await exchange.send(chunk(_error_line(problem)))
        await exchange.send(LAST_CHUNK)
        return True

    async def _plan(self, request: Request) -> tuple[ImageRef, Route, str | None] | None:
        """The image, its route and the engine's libpod API version (None: Docker), for a
        pull through the endpoint; None to leave the request as it came."""
        query = request.query
        ref = _reference(query.get("fromImage", ""), query.get("tag", ""))
        if "fromSrc" in query or ref is None:
            return None
        image = ImageRef.read(ref)
        plain, credentials = _credentials(request.get("X-Registry-Auth"))
        if image is None or not plain:
            return None
        if self.routes.mirror_for(image, credentials) is None:
            host = URL(f"https://{image.registry}").host or image.registry
            try:
                await check_host(host, what=f"image {ref}", allow_private=self.allow_private)
            except UnsafeUpstream as exc:
                log.info("node.image_passed_on", image=ref, reason=exc.message)
                return None
        try:
            mirrors = await registry_mirrors(self.engine)
            api = await libpod_api_of(self.engine)
        except (EngineUnavailable, EngineError):
            return None  # the pass-through answers as the engine (or its absence) does
        route = self.routes.choose(image, credentials, mirrors)
        return (image, route, api) if route.via == "endpoint" else None

    async def _refused(
        self,
        exchange: Exchange,
        image: ImageRef,
        route: Route,
        status: int,
        body: AsyncIterator[bytes],
    ) -> bool:
        """The engine refused before streaming: its status and message, the endpoint's cause
        added; or, if it cannot reach the endpoint, the node's request as it came."""
        raw = b"".join([piece async for piece in body])
        try:
            message = str(json.loads(raw).get("message", ""))
        except (ValueError, AttributeError):
            message = raw.decode("utf-8", "replace")
        if self.routes.unreachable(route, message):
            log.warning(
                "node.endpoint_unreachable",
                image=image.original,
                error=message,
                hint=UNREACHABLE_HINT,
            )
            return False
        message += _because(message, self._cause(route))
        log.info("node.image_failed", image=image.original, status=status, error=message)
        await exchange.send(error_response(status, "Error", message))
        return True

    async def _as_asked(self, exchange: Exchange) -> None:
        """The node's pull exactly as it asked, its progress into the answer already begun
        (the engine said it cannot use the endpoint before it pulled anything)."""
        request = exchange.request
        auth = request.get("X-Registry-Auth")
        headers = {"X-Registry-Auth": auth} if auth else {}
        async with engine_stream(self.engine, "POST", request.target, headers) as (head, body):
            if head.status != 200:  # refused before streaming: said in the stream begun
                raw = b"".join([piece async for piece in body])
                await exchange.send(chunk(_error_line(_said(_json(raw) or raw.decode()))))
                return
            async for piece in body:
                await exchange.send(chunk(piece))

    async def _relay(
        self,
        exchange: Exchange,
        image: ImageRef,
        route: Route,
        body: AsyncIterator[bytes],
        *,
        podman: bool,
    ) -> bool | None:
        """Pass the progress on as it comes, line by line (libpod's report lines as Docker's
        events); whether it reported an error, or None when the error says the engine cannot
        use the endpoint (that line kept back)."""
        failed = False
        pending = b""
        async for piece in body:
            pending += piece
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_LINE:
                lines.append(pending)
                pending = b""
            out = []
            for line in lines:
                value = _json(line)
                if value is not None and podman:
                    value = libpod.docker_event(value, route.source)
                    line = json.dumps(value, separators=(",", ":")).encode() + b"\r"
                if value is not None and "error" in value:
                    if self.routes.unreachable(route, str(value.get("error", ""))):
                        log.warning(
                            "node.endpoint_unreachable",
                            image=image.original,
                            error=value.get("error"),
                            hint=UNREACHABLE_HINT,
                        )
                        return None
                    failed = True
                    line = self._with_cause(value, image, route)
                elif value is not None and route.source in str(value.get("status", "")):
                    value["status"] = str(value["status"]).replace(route.source, image.local_name)
                    line = json.dumps(value, separators=(",", ":")).encode() + b"\r"
                out.append(line + b"\n")
            if out:
                await exchange.send(chunk(b"".join(out)))
        if pending:
            await exchange.send(chunk(pending))
        return failed

    def _with_cause(self, value: dict[str, Any], image: ImageRef, route: Route) -> bytes:
        message = str(value.get("error", ""))
        self.routes.unreachable(route, message)  # later pulls go the old way if so
        message += _because(message, self._cause(route))
        log.info("node.image_failed", image=image.original, error=message)
        return _error_line(message).rstrip(b"\n")

    def _cause(self, route: Route) -> str | None:
        name = route.endpoint_name
        return self.explain(name) if name is not None else None

    async def _retag(self, image: ImageRef, route: Route) -> str | None:
        """Tag as the node asked, remove the endpoint's tag; what went wrong, if anything."""
        repository, _, tag = image.local_name.rpartition(":")
        source = quote(route.source, safe="/:")
        query = urlencode({"repo": repository, "tag": tag})
        try:
            status, body = await engine_call(self.engine, "POST", f"/images/{source}/tag?{query}")
            if status not in (200, 201):
                return f"tagging {route.source} as {image.local_name} failed: {_said(body)}"
            status, body = await engine_call(self.engine, "DELETE", f"/images/{source}")
            if status != 200:
                return f"removing the tag {route.source} failed: {_said(body)}"
        except (EngineUnavailable, EngineError) as exc:
            return f"nosana-cache: {exc}"
        log.info("node.image_pulled", image=image.local_name, source=route.source)
        return None


def _reference(image: str, tag: str) -> str | None:
    """The reference the node asked for; None for a pull of every tag (no tag at all)."""
    if not image:
        return None
    if tag:
        return f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}"
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last or "@" in image else None


def _credentials(header: str | None) -> tuple[bool, Credentials | None]:
    """The node's `X-Registry-Auth` (base64url JSON) as credentials; False where it is not
    plain username and password (a token, or unreadable): such pulls pass through."""
    if not header or not header.strip():
        return True, None
    try:
        value = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return False, None
    if not isinstance(value, dict) or set(value) - _PLAIN_AUTH:
        return False, None
    if not value.get("username") and not value.get("password"):
        return True, None
    username, password = value.get("username"), value.get("password")
    return True, Credentials(username, password, value.get("serveraddress"))


def _auth(route: Route) -> dict[str, str]:
    return {} if route.auth is None else {"X-Registry-Auth": libpod.auth_header(route.auth)}


def _create_target(request: Request, route: Route, api: str | None) -> str:
    """The node's request line's path and query, for the endpoint's name (the same `platform`);
    on Podman (`api`), libpod's pull of it."""
    if api is not None:
        return libpod.pull_target(api, route.source, request.query.get("platform"))
    repository, _, tag = route.source.rpartition(":")
    query = {**request.query, "fromImage": repository, "tag": tag}
    return f"{request.path}?{urlencode(query)}"


def _json(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _error_line(message: str) -> bytes:
    """An error in a pull's stream as the engine sends it."""
    value = {"errorDetail": {"message": message}, "error": message}
    return json.dumps(value, separators=(",", ":")).encode() + b"\r\n"


def _because(message: str, cause: str | None) -> str:
    """The endpoint's cause, unless the engine's message carries it already (a 4xx's body)."""
    return "" if cause and cause in message else because(cause)


def _said(body: Any) -> str:
    return str(body.get("message")) if isinstance(body, dict) else str(body)
