"""Errors as the Hub gives them: a status, `X-Error-Code` and `X-Error-Message` headers, and
`{"error": message}`.

huggingface_hub, transformers, vLLM and TGI decide what to raise from the status and the
`X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo`), so an answer
from this endpoint must carry them as the Hub would. Refusals of the upstream Hub pass through
as it gave them; what only the cache can say (upstream unreachable and no copy here, no room in
the store) gets the statuses a gateway gives, with a message that says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import (
    InsufficientSpace,
    InvalidInput,
    NosanaCacheError,
    NotFound,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRefused,
    UpstreamUnavailable,
)
from ..logs import get_logger
from ..util.wire import respond
from .answers import HubError

log = get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EntryNotFound(NotFound):
    """A path that the revision does not have (the Hub says `EntryNotFound`, with the commit)."""

    def __init__(self, message: str, commit: str) -> None:
        super().__init__(message)
        self.commit = commit


XET_REFUSED = (
    "this Hub endpoint is a cache that serves files over plain HTTP only, and has no Xet "
    "storage to give a token for; set HF_HUB_DISABLE_XET=1 (job containers get it) and the "
    "client downloads through /resolve"
)
"""Why `xet-read-token` is refused: hub >= 1.22 asks for a token, instead of a file's HEAD,
when its own cache holds the tree listing of a download straight from the Hub (with Xet
hashes), and has no fallback; the message is what its error shows."""
XET_STATUS = 501
"""Not Implemented: not a 404 (which the client would report as a missing repo), not a 5xx
it retries (500, 502-504)."""


def hub_error(
    status: int, message: str, code: str | None = None, commit: str | None = None
) -> web.Response:
    headers = {"X-Error-Message": _header_text(message)}
    if code:
        headers["X-Error-Code"] = code
    if commit:
        headers["X-Repo-Commit"] = commit
    return respond(HubError(error=message), status=status, headers=headers)


def from_error(exc: NosanaCacheError) -> web.Response:
    """The Hub's answer for one of the daemon's errors."""
    if isinstance(exc, UpstreamRefused):
        return hub_error(exc.status, exc.reason or exc.message, exc.code)
    if isinstance(exc, EntryNotFound):
        return hub_error(404, exc.message, "EntryNotFound", exc.commit)
    if isinstance(exc, UpstreamUnavailable):
        status = 504 if _timed_out(exc) else 502
        return hub_error(status, f"the cache could not reach the Hub: {exc.message}")
    if isinstance(exc, InsufficientSpace):
        return hub_error(507, f"the cache has no room for this file: {exc.message}")
    if isinstance(exc, InvalidInput):
        return hub_error(400, exc.message, "BadRequest")
    if isinstance(exc, UpstreamAuthError):  # refused mid-download (the listing let it through)
        return hub_error(403, exc.message)
    if isinstance(exc, UpstreamNotFound):  # listed, but gone upstream when fetched
        return hub_error(404, exc.message, "EntryNotFound")
    if isinstance(exc, UpstreamError):
        return hub_error(502, f"the Hub answered badly: {exc.message}")
    return hub_error(exc.status, exc.message)


@web.middleware
async def hub_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error of a `/hf` route leaves as the Hub's error, not as problem+json, on the
    API's listener and on the containers' alike (only this middleware is common to both)."""
    try:
        return await handler(request)
    except NosanaCacheError as exc:
        log.info("hub.refused", path=request.path, error=exc.message)
        return from_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return hub_error(exc.status, exc.reason)
    except Exception:  # a bug: on both listeners, the Hub's 500 (and the traceback, once)
        log.exception("hub.unexpected_error", method=request.method, path=request.path)
        return hub_error(500, "unexpected error in the cache; see its log")


def _timed_out(exc: BaseException) -> bool:
    """Whether a timeout is at the bottom of the error (504), rather than a refusal (502)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _header_text(message: str) -> str:
    """A message fit for a header: one line, printable ASCII, not too long."""
    flat = " ".join(message.split())
    return flat.encode("ascii", "replace").decode()[:500]
