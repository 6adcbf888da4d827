"""Upstream's HTTP answers as the daemon's errors: the reason upstream gave (an HF
`X-Error-Message`, an S3 `<Code>`/`<Message>`, or text), the URL without its query (never a
signature), and retryability in the type (`UpstreamUnavailable` with the Retry-After delay).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping

from yarl import URL

from ..errors import (
    NosanaCacheError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or
    not understood, since a hostile header must not break the retry loop."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def upstream_message(headers: Mapping[str, str], body: bytes) -> str:
    """The reason upstream gave: an HF `X-Error-Message`, an S3 XML `<Message>`, or text."""
    if headers.get("X-Error-Message"):
        code = headers.get("X-Error-Code")
        return f"{code}: {headers['X-Error-Message']}" if code else headers["X-Error-Message"]
    text = body[:2048].decode(errors="replace")
    found = [
        m.group(1)
        for m in (re.search(f"<{t}>([^<]+)</{t}>", text) for t in ("Code", "Message"))
        if m
    ]
    if found:
        return ": ".join(found)
    return re.sub(r"\s+", " ", text).strip()[:200]


def status_error(
    status: int, headers: Mapping[str, str], body: bytes, name: str, url: URL
) -> NosanaCacheError:
    reason = upstream_message(headers, body)
    where = f"{name}: {url.with_query(None)} answered {status}" + (f" ({reason})" if reason else "")
    if status in RETRY_STATUSES:
        return UpstreamUnavailable(where, delay=parse_retry_after(headers.get("Retry-After")) or 0)
    if status == 404:
        return UpstreamNotFound(where)
    if status in (401, 403):
        return UpstreamAuthError(where)
    return UpstreamError(where)


def describe(exc: BaseException) -> str:
    if isinstance(exc, NosanaCacheError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def unavailable(exc: BaseException, name: str, url: URL, attempts: int) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"{name}: {url.with_query(None)} unavailable after {attempts} attempts: {describe(exc)}"
    )
