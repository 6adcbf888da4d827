"""The aiohttp applications: middlewares for auth, errors and one log line per request.

Handlers stay thin: they parse, call one component, and return JSON. Every error leaves as
problem+json, whether it is ours, aiohttp's (404, 405) or an unexpected crash (500, logged),
except under `/hf`: the Hub endpoint (daemon.hub) answers in the Hub's shapes, and its
`Authorization` is a Hugging Face token, not `api.token`. Job containers get an app of their
own (`build_container_app`) with `/hf` and `/healthz` and nothing of the API.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from ..errors import NosanaCacheError
from ..hub import PREFIX as HUB_PREFIX
from ..hub import HubMirror, hub_app
from ..logs import get_logger
from ..util.clock import Clock, SystemClock
from .context import CONTEXT, ApiContext
from .jobs import routes as job_routes
from .market import routes as market_routes
from .metrics import routes as metrics_routes
from .openapi import routes as openapi_routes
from .problems import from_error, problem
from .resources import routes as resource_routes
from .status import healthz
from .status import routes as status_routes

log = get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_OPEN_PATHS = frozenset({"/healthz"})
ROUTE_TABLES = [
    status_routes,
    resource_routes,
    job_routes,
    market_routes,
    metrics_routes,
    openapi_routes,
]


def _request_log(clock: Clock) -> Callable[[web.Request, Handler], Awaitable[Any]]:
    """Bind a request id and write one canonical line when the request ends (its duration
    on `clock`)."""

    @web.middleware
    async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = clock.monotonic()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers["X-Request-Id"] = request_id
            return response
        finally:
            fields = {
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round((clock.monotonic() - started) * 1000, 1),
            }
            if request.path in ("/healthz", "/readyz", "/metrics"):
                log.debug("http.request", **fields)
            else:
                log.info("http.request", **fields)
            structlog.contextvars.unbind_contextvars("request_id")

    return request_log


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into problem+json; log the unexpected ones with their traceback."""
    try:
        return await handler(request)
    except NosanaCacheError as exc:
        request.app[CONTEXT].metrics.api_errors[exc.kind] += 1
        return from_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else ""
        return problem(exc.status, exc.reason, detail or exc.reason, headers=_allow(exc))
    except Exception:
        log.exception("http.unexpected_error", method=request.method, path=request.path)
        return problem(500, "Internal error", "unexpected error; see the daemon's log")


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None


def _auth_middleware(token: str) -> Callable[[web.Request, Handler], Awaitable[Any]]:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _OPEN_PATHS or request.path.startswith(f"{HUB_PREFIX}/"):
            return await handler(request)  # /hf: a Hugging Face token, checked upstream
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return problem(
                401,
                "Unauthorized",
                "this daemon requires `Authorization: Bearer <api.token>`",
                headers={"WWW-Authenticate": 'Bearer realm="nosana-cache"'},
            )
        return await handler(request)

    return auth


def build_app(context: ApiContext) -> web.Application:
    """The whole API, with the routes of every component that `context` provides."""
    middlewares: list[Any] = [_request_log(context.clock), _problems]
    token = context.api.token
    if token is not None and token.get_secret_value():
        middlewares.append(_auth_middleware(token.get_secret_value()))
    app = web.Application(middlewares=middlewares, client_max_size=4 * 1024**2)
    app[CONTEXT] = context
    for routes in ROUTE_TABLES:
        app.router.add_routes(routes)
    if context.hub is not None:
        app.add_subapp(HUB_PREFIX, hub_app(context.hub))
    return app


def build_container_app(hub: HubMirror, clock: Clock | None = None) -> web.Application:
    """What job containers reach: the Hub endpoint under `/hf` and `/healthz`, nothing else."""
    middlewares: list[Any] = [_request_log(clock or SystemClock())]
    app = web.Application(middlewares=middlewares, client_max_size=1024**2)
    app.router.add_get("/healthz", healthz)
    app.add_subapp(HUB_PREFIX, hub_app(hub))
    return app
