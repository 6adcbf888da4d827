"""The pull side of the OCI Distribution API, as an app of its own listener.

    GET       /v2/                              the API is here (no authentication asked)
    HEAD|GET  /v2/<name>/manifests/<reference>  by tag or digest: upstream's exact bytes,
                                                Content-Type, Docker-Content-Digest
    HEAD|GET  /v2/<name>/blobs/<digest>         Range (206), bytes as they land

    GET       /token                            the token `/v2/`'s challenge names (tokens.py)

Handlers stay thin: they read the request (names.py), ask the mirror, and answer. Every error
leaves in the Distribution error format (`{"errors": [{"code", "message", "detail"}]}`). A
request's credential (Basic `Authorization`, or a token of /token carrying it) is the one used
upstream for it; when upstream refuses, the answer is 401 with the Bearer challenge of `/v2/`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import (
    NosanaCacheError,
    UnsafeUpstream,
    UpstreamAuthError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from ..logs import get_logger
from ..ranges import Unsatisfiable, parse_range
from ..sources.registry import Repository
from ..sources.registry_upstream import RegistryUnknown
from ..store import FileStream
from . import names, tokens
from .mirror import RegistryMirror
from .pulls import Tally
from .refusals import Refusals
from .serving import blob_headers, send

log = get_logger(__name__)

MIRROR = web.AppKey("registry_mirror", RegistryMirror)
REFUSALS = web.AppKey("registry_refusals", Refusals)
API_VERSION = {"Docker-Distribution-Api-Version": "registry/2.0"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def registry_app(mirror: RegistryMirror, refusals: Refusals | None = None) -> web.Application:
    app = web.Application(middlewares=[distribution_errors])
    app[MIRROR] = mirror
    app[REFUSALS] = refusals or Refusals()
    app.router.add_get("/v2/", base)
    app.router.add_get("/v2", base)
    app.router.add_get("/v2/{name:.+}/manifests/{reference}", manifest)
    app.router.add_get("/v2/{name:.+}/blobs/{digest}", blob)
    app.router.add_get("/token", token)
    app.router.add_get("/healthz", healthz)
    return app


async def base(request: web.Request) -> web.Response:
    """200 to a request with credentials or a token; else the challenge that makes engines
    ask /token (and send credentials there, when they have them)."""
    if tokens.presented(request):
        return web.json_response({}, headers=API_VERSION)
    answer = _error(401, "UNAUTHORIZED", "ask /token, anonymously or with credentials")
    answer.headers["WWW-Authenticate"] = tokens.challenge(request)
    return answer


async def token(request: web.Request) -> web.Response:
    return tokens.issue(request, request.app[MIRROR].clock.now())


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _repository(request: web.Request) -> Repository:
    return names.repository(request.match_info["name"], request.query.get("ns"))


async def manifest(request: web.Request) -> web.Response:
    repo = _repository(request)
    reference = names.reference(request.match_info["reference"])
    mirror, credential = request.app[MIRROR], tokens.credential(request)
    tally = mirror.pulls.manifest(repo, reference, private=credential is not None)
    try:
        served = await mirror.manifest(repo, reference, credential, tally)
        mirror.pulls.served_manifest(tally, served.digest, served.body)
        if request.method == "GET":
            tally.sent_bytes(len(served.body))
    finally:
        tally.done()
    headers = {
        **API_VERSION,
        "Docker-Content-Digest": served.digest,
        "Content-Type": served.media_type,
        "ETag": f'"{served.digest}"',
    }
    return web.Response(body=served.body, headers=headers)  # a HEAD's body is not sent


async def blob(request: web.Request) -> web.StreamResponse:
    repo = _repository(request)
    digest = names.digest(request.match_info["digest"])
    mirror, credential = request.app[MIRROR], tokens.credential(request)
    headers = blob_headers(digest)
    if request.method == "HEAD":
        response = web.StreamResponse(headers=headers)
        response.content_length = await mirror.blob_size(repo, digest, credential)
        await response.prepare(request)
        return response
    tally = mirror.pulls.blob(repo, digest, private=credential is not None)
    try:
        stream = await mirror.open_blob(repo, digest, credential, tally)
        try:
            return await _send_blob(request, stream, headers, tally)
        finally:
            await stream.close()
    finally:
        tally.done()


async def _send_blob(
    request: web.Request, stream: FileStream, headers: dict[str, str], tally: Tally
) -> web.StreamResponse:
    try:
        span = parse_range(request.headers.get("Range"), stream.size)
    except Unsatisfiable:
        return _error(416, "RANGE_INVALID", f"the blob has {stream.size} bytes")
    whole = (0, stream.size, False)
    return await send(request, stream, headers, (*span, True) if span else whole, tally.sent_bytes)


@web.middleware
async def distribution_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    clock = request.app[MIRROR].clock
    started = clock.monotonic()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404:
            return _error(404, "NAME_UNKNOWN", "no such route on the registry endpoint")
        if exc.status == 405:
            return _error(405, "UNSUPPORTED", "this endpoint serves pulls only")
        raise
    except NosanaCacheError as exc:
        status, code = _status_and_code(exc, request.path)
        log.info("registry.refused", path=request.path, status=status, code=code, error=exc.message)
        if "name" in request.match_info:
            request.app[REFUSALS].note(request.match_info["name"], exc.message)
        answer = _error(status, code, exc.message)
        if isinstance(exc, UpstreamAuthError):
            answer.headers["WWW-Authenticate"] = tokens.challenge(request)
        if isinstance(exc, UpstreamRateLimited) and exc.delay:
            answer.headers["Retry-After"] = str(int(exc.delay))
        return answer
    log.debug(
        "registry.request",
        method=request.method,
        path=request.path,
        status=response.status,
        seconds=round(clock.monotonic() - started, 3),
    )
    return response


def _status_and_code(exc: NosanaCacheError, path: str) -> tuple[int, str]:
    if isinstance(exc, names.BadRequest):
        return 400, exc.code
    if isinstance(exc, RegistryUnknown):
        return 404, exc.code
    if isinstance(exc, UpstreamNotFound):
        return 404, "BLOB_UNKNOWN" if "/blobs/" in path else "MANIFEST_UNKNOWN"
    if isinstance(exc, UpstreamAuthError):
        return 401, "UNAUTHORIZED"
    if isinstance(exc, UpstreamRateLimited):
        return 429, "TOOMANYREQUESTS"
    if isinstance(exc, UpstreamUnavailable):
        return 503, "UNAVAILABLE"
    if isinstance(exc, UnsafeUpstream):
        return 403, "DENIED"
    return (exc.status if exc.status >= 500 else 502), "UNKNOWN"


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"errors": [{"code": code, "message": message, "detail": None}]}
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json",
        headers=API_VERSION,
    )  # fmt: skip
