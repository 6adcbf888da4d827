"""Every error the daemon raises on purpose, arranged by who can act on it.

Library exceptions (aiohttp, botocore, docker, sqlite3) are converted into these at the
boundary of the module that calls the library, so that the API and the CLI only ever have to
map this tree to a status code or an exit code.

    NosanaCacheError
    ├── ConfigError                  the operator fixes the config (exit 2)
    ├── InvalidInput                 the caller fixes the request (HTTP 400, with `errors`)
    │   └── TooLarge                 past a bound on input (daemon.limits): HTTP 413
    ├── NotFound                     no such entry or job (HTTP 404)
    ├── Conflict                     the request is valid but the state forbids it (HTTP 409)
    ├── UpstreamError                something beyond this host answered badly
    │   ├── UpstreamNotFound         repo, revision, file, bucket, key, model or tag missing
    │   ├── UpstreamAuthError        401/403 or a gated repo: the credentials are the problem
    │   ├── UpstreamRefused          the Hub refused a client's request: its status and code kept
    │   ├── UpstreamIntegrityError   bytes did not match the digest upstream announced
    │   ├── UnsafeUpstream           a URL or file name that would escape (SSRF, path escape)
    │   ├── UpstreamTooLarge         an answer past a bound on input (daemon.limits)
    │   ├── AlreadyExists            a write that asked for a new object found one (HTTP 412)
    │   ├── UpstreamUnsupported      the server does not do that operation (405, 501)
    │   └── UpstreamUnavailable      temporary: network down, 5xx, timeouts (retryable)
    │       └── UpstreamRateLimited  429: upstream's pull limit (a registry's TOOMANYREQUESTS)
    ├── StoreError                   the local store cannot do it
    │   ├── InsufficientSpace        not enough room even after eviction
    │   └── StoreCorrupted           a blob on disk does not match its digest
    ├── EngineError                  the Docker engine refused or is absent
    │   ├── EngineUnavailable        no engine reachable (temporary)
    │   └── ImageError               an image could not be pulled or found
    ├── JobError                     an op failed for a reason of its own (exit code, GPU...)
    └── FenceError                   job containers cannot be fenced off private networks

Retryability is part of the type: `TemporaryError` marks errors worth retrying, after at least
`delay` seconds when the other side said so (0: no wait was asked for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class NosanaCacheError(Exception):
    """Root of every error the daemon raises on purpose.

    `title` is a short, stable phrase (used as the problem+json title); the message says what
    happened in words an operator can act on.
    """

    title = "Internal error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def kind(self) -> str:
        """A stable snake-ish name for metrics and logs, e.g. `UpstreamNotFound`."""
        return type(self).__name__


class TemporaryError(NosanaCacheError):
    """Mixin root for errors that may go away if the same thing is tried again later."""

    def __init__(self, message: str, *, delay: float = 0.0) -> None:
        super().__init__(message)
        self.delay = delay


class ConfigError(NosanaCacheError):
    """The configuration (file, environment or command line) is wrong; names the key."""

    title = "Invalid configuration"
    status = 500

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


@dataclass(frozen=True)
class FieldError:
    """One problem in a request body, located as `ops[0].args.resources[1].repo`."""

    loc: str
    msg: str


class InvalidInput(NosanaCacheError):
    """A job, resource or request that is malformed; carries every problem with its place."""

    title = "Invalid input"
    status = 400

    def __init__(self, message: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


class TooLarge(InvalidInput):
    """A request past one of the bounds on input (`daemon.limits`): its message names it."""

    title = "Too large"
    status = 413


class NotFound(NosanaCacheError):
    title = "Not found"
    status = 404


class Conflict(NosanaCacheError):
    title = "Conflict"
    status = 409


class UpstreamError(NosanaCacheError):
    title = "Upstream error"
    status = 502


class UpstreamNotFound(UpstreamError):
    title = "Not found upstream"
    status = 404


class UpstreamAuthError(UpstreamError):
    title = "Access denied upstream"
    status = 403


class UpstreamRefused(UpstreamError):
    """The upstream Hub refused a request made for a client of the Hub endpoint; the client
    must see the refusal as the Hub gave it (`RepoNotFound` 401, `GatedRepo` 403...), since
    its library raises on the status and `X-Error-Code`."""

    title = "Refused upstream"

    def __init__(self, message: str, *, status: int, code: str | None, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.reason = reason
        """The Hub's own words (its `X-Error-Message`)."""


class UpstreamIntegrityError(UpstreamError):
    title = "Upstream sent corrupt data"
    status = 502


class UnsafeUpstream(UpstreamError):
    """A URL into a private network, or a file name that would leave its view."""

    title = "Refused unsafe upstream"
    status = 400


class UpstreamTooLarge(UpstreamError):
    """An answer from beyond this host past one of the bounds on input (`daemon.limits`):
    refused before it is worked on, the bound named."""

    title = "Upstream answer too large"
    status = 502


class AlreadyExists(UpstreamError):
    """A conditional write (`If-None-Match: *`) found the object there already: another node
    wrote it first. Callers that elect one writer this way expect it."""

    title = "Already exists upstream"
    status = 409


class UpstreamUnsupported(UpstreamError):
    """The server does not implement the operation (405 MethodNotAllowed, 501 NotImplemented):
    S3's smaller implementations lack some (s3rver has no ListParts). Asking again will not
    help; a caller that has another way goes that way."""

    title = "Not supported upstream"
    status = 502


class UpstreamUnavailable(UpstreamError, TemporaryError):
    title = "Upstream unavailable"
    status = 503


class UpstreamRateLimited(UpstreamUnavailable):
    """Upstream said 429 and meant it (Docker Hub's pull limit): passed on to the client at
    once rather than retried for minutes."""

    title = "Too many requests upstream"
    status = 429


class StoreError(NosanaCacheError):
    title = "Store error"
    status = 500


class InsufficientSpace(StoreError):
    title = "Insufficient space"
    status = 507

    def __init__(self, needed: int, available: int, detail: str = "") -> None:
        message = f"needs {needed} bytes, {available} bytes available"
        super().__init__(f"{message} ({detail})" if detail else message)
        self.needed = needed
        self.available = available


class StoreCorrupted(StoreError):
    title = "Store corrupted"
    status = 500


class EngineError(NosanaCacheError):
    title = "Docker engine error"
    status = 502


class EngineUnavailable(EngineError, TemporaryError):
    title = "Docker engine unavailable"
    status = 503


class ImageError(EngineError):
    title = "Image unavailable"
    status = 502


class JobError(NosanaCacheError):
    title = "Job failed"
    status = 422


class FenceError(NosanaCacheError):
    """The fence around job containers cannot be installed, checked or removed here."""

    title = "Job containers cannot be fenced"
    status = 503
