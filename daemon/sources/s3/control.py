"""S3's control plane through aiobotocore: listing, HEADs, and what their failures mean.

botocore speaks S3 as S3 does (XML under whichever namespace a server writes, keys URL-encoded
in listings, region redirects on AWS, checksum mode, part numbers); this module turns its
answers into what the resolver needs and its exceptions into the project's errors, which name
the bucket or key and the credentials used:

    ClientError 404, NoSuchBucket, NoSuchKey      → UpstreamNotFound
    ClientError 401/403 (AccessDenied, bad keys)  → UpstreamAuthError (never retried)
    ClientError 412 (a conditional write lost)    → AlreadyExists
    ClientError 405/501, NotImplemented           → UpstreamUnsupported (never retried)
    ClientError 408/429/5xx, SlowDown             → UpstreamUnavailable, retried
    no connection, timeouts, dropped answers      → UpstreamUnavailable, retried
    a private address refused by the SSRF guard   → UnsafeUpstream
    a bucket name S3 cannot have                  → InvalidInput

Retries are this module's, not botocore's, so that they follow the daemon's one policy
(daemon/util/retry.py): `download.max_retries`, the same pauses, a Retry-After honoured up to a
minute.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
)

from ...errors import (
    AlreadyExists,
    InvalidInput,
    NosanaCacheError,
    UnsafeUpstream,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamTooLarge,
    UpstreamUnavailable,
    UpstreamUnsupported,
)
from ...util.clock import Clock
from ...util.limits import S3_PAGES, Bound
from ...util.retry import RetryPolicy, retrying
from ..http_errors import RETRY_STATUSES, parse_retry_after
from .clients import S3Clients
from .places import Credentials, Place

PAGE_SIZE = 1000
_TEMPORARY_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"}


@dataclass(frozen=True)
class S3Object:
    """One object as a listing describes it."""

    key: str
    size: int
    etag: str
    checksums: frozenset[str] = frozenset()  # the algorithms the listing says S3 keeps
    last_modified: float | None = None  # seconds since the epoch


@dataclass(frozen=True)
class ObjectHead:
    """What a HeadObject answer says that the resolver reads: the whole-object checksums S3
    keeps (with checksum mode), and, asked for `PartNumber=1`, whether the answer is about a
    part (a 206, or a parts count) and its length."""

    status: int | None = None
    content_length: int | None = None
    parts_count: int | None = None
    checksum_type: str | None = None  # FULL_OBJECT or COMPOSITE; None when unsaid
    checksums: Mapping[str, str] = field(default_factory=dict)
    """By algorithm (`SHA256`, `CRC32`...): the base64 value S3 answered."""

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> ObjectHead:
        status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
        length, parts, kind = (
            answer.get(k) for k in ("ContentLength", "PartsCount", "ChecksumType")
        )
        checksums = {
            key.removeprefix("Checksum"): value
            for key, value in answer.items()
            if key.startswith("Checksum") and key != "ChecksumType" and isinstance(value, str)
        }
        return cls(
            status=status if isinstance(status, int) else None,
            content_length=length if isinstance(length, int) else None,
            parts_count=None if parts is None else int(parts),
            checksum_type=None if kind is None else str(kind),
            checksums=checksums,
        )


@dataclass(frozen=True)
class Listing:
    """What a prefix holds, and the region S3 answered for (after any region redirect)."""

    objects: list[S3Object]
    region: str | None


class ControlPlane:
    def __init__(self, clients: S3Clients, policy: RetryPolicy, clock: Clock) -> None:
        self.clients = clients
        self.policy = policy
        self.clock = clock
        self.page_size = PAGE_SIZE
        """Keys asked for per ListObjectsV2 page (tests lower it to see many pages)."""

    async def list(
        self, place: Place, credentials: Credentials, most: Bound | None = None
    ) -> Listing:
        """Every object whose key starts with the place's prefix, page after page; with
        `most` (a listing a job named), no more objects than it allows and no more than
        `s3.pages` pages (empty pages included), refused before the next page is asked."""
        objects: list[S3Object] = []
        params: dict[str, Any] = {
            "Bucket": place.bucket,
            "Prefix": place.prefix.rstrip("/"),
            "MaxKeys": self.page_size,
        }
        for pages in itertools.count(1):
            if most is not None:
                _check_listing(place, most, len(objects), pages)
            page = await self.call(place, credentials, "list_objects_v2", params, "listing")
            objects.extend(
                S3Object(
                    item["Key"],
                    int(item.get("Size", 0)),
                    item.get("ETag", ""),
                    frozenset(item.get("ChecksumAlgorithm", ())),
                    _seconds(item.get("LastModified")),
                )
                for item in page.get("Contents", ())
            )
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                if most is not None:
                    _check_listing(place, most, len(objects), pages)
                return Listing(objects, page.get("ResponseMetadata", {}).get("SigningRegion"))
            params["ContinuationToken"] = token
        raise AssertionError("unreachable: itertools.count does not end")

    async def head(
        self, place: Place, credentials: Credentials, key: str, **params: Any
    ) -> ObjectHead:
        """HeadObject's answer (e.g. `ChecksumMode="ENABLED"` or `PartNumber=1`)."""
        answer = await self.call(
            place,
            credentials,
            "head_object",
            {"Bucket": place.bucket, "Key": key, **params},
            f"HEAD of {key}",
        )
        return ObjectHead.of(answer)

    async def call(
        self,
        place: Place,
        credentials: Credentials,
        operation: str,
        params: dict[str, Any],
        what: str,
    ) -> dict[str, Any]:
        """One S3 operation of the client (`"put_object"`, `{"Bucket": ...}`), retried while it
        fails for a moment; its answer, or the project's error naming `what` failed."""
        where = f"{place.describe()}: {what} failed with {credentials.describe()}"

        async def once() -> dict[str, Any]:
            try:
                async with self.clients.use(place, credentials) as client:
                    answer: dict[str, Any] = await getattr(client, operation)(**params)
                    return answer
            except (ClientError, BotoCoreError) as exc:
                raise convert(exc, where) from exc

        def gave_up(exc: BaseException, attempts: int) -> UpstreamUnavailable:
            message = exc.message if isinstance(exc, NosanaCacheError) else str(exc)
            return UpstreamUnavailable(f"{message} (gave up after {attempts} attempts)")

        return await retrying(
            once,
            self.policy,
            self.clock,
            retry_if=lambda exc: isinstance(exc, UpstreamUnavailable),
            give_up=gave_up,
        )


def convert(exc: ClientError | BotoCoreError, where: str) -> NosanaCacheError:
    """The project's error for a botocore exception; `where` says what failed, with whom."""
    if isinstance(exc, ClientError):
        return _answered(exc, where)
    cause = exc.kwargs.get("error")
    if isinstance(cause, UnsafeUpstream):  # raised by the guard inside aiohttp
        return UnsafeUpstream(f"{where}: {cause.message}")
    if isinstance(exc, ParamValidationError):
        return InvalidInput(f"{where}: {_one_line(str(exc))}")
    if isinstance(exc, NoCredentialsError):
        return UpstreamAuthError(f"{where}: {exc}")
    if isinstance(exc, ConnectionError | HTTPClientError):
        reason = f"{exc} ({cause})" if cause is not None else str(exc)
        return UpstreamUnavailable(f"{where}: {_one_line(reason)}")
    return UpstreamError(f"{where}: {_one_line(str(exc))}")


def _answered(exc: ClientError, where: str) -> NosanaCacheError:
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    status = int(meta.get("HTTPStatusCode") or 0)
    code = str(error.get("Code") or status)
    message = str(error.get("Message") or "")
    # A HEAD has no body: botocore gives the status as the code and its phrase as message.
    named = code != str(status) and message
    reason = f"{code}: {message}" if named else (message or code)
    text = f"{where}: answered {status} ({_one_line(reason)})"
    if status in RETRY_STATUSES or code in _TEMPORARY_CODES:
        headers = meta.get("HTTPHeaders", {})
        return UpstreamUnavailable(text, delay=parse_retry_after(headers.get("retry-after")) or 0)
    if status == 412:
        return AlreadyExists(text)
    if status == 404 or code in ("NoSuchBucket", "NoSuchKey", "NoSuchUpload"):
        return UpstreamNotFound(text)
    if status in (401, 403):
        return UpstreamAuthError(text)
    if status in (405, 501) or code in ("MethodNotAllowed", "NotImplemented"):
        return UpstreamUnsupported(text)
    return UpstreamError(text)


def _seconds(moment: Any) -> float | None:
    """A listing's LastModified (botocore gives a datetime) as seconds since the epoch."""
    timestamp = getattr(moment, "timestamp", None)
    return float(timestamp()) if timestamp is not None else None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _check_listing(place: Place, most: Bound, objects: int, pages: int) -> None:
    where = f"the listing of {place.describe()}"
    too_large = most.over(objects, where) or S3_PAGES.over(pages, where)
    if too_large:
        raise UpstreamTooLarge(too_large)
