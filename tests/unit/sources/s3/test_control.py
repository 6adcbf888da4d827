"""botocore's exceptions, as S3 and aiohttp raise them, in the project's error tree."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
)

from daemon.errors import (
    AlreadyExists,
    InvalidInput,
    NosanaCacheError,
    UnsafeUpstream,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from daemon.sources.s3.control import convert

WHERE = "s3://b/p/: listing failed with access key AKIA1 (the resource's IAM)"


def answered(status: int, code: str, message: str = "", **headers: str) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers},
    }
    return ClientError(response, "ListObjectsV2")


@pytest.mark.parametrize(
    ("error", "kind", "says"),
    [
        (
            answered(404, "NoSuchBucket", "gone"),
            UpstreamNotFound,
            "answered 404 (NoSuchBucket: gone)",
        ),
        (answered(404, "404", "Not Found"), UpstreamNotFound, "answered 404 (Not Found)"),
        (answered(403, "AccessDenied", "no"), UpstreamAuthError, "answered 403 (AccessDenied: no)"),
        (answered(403, "InvalidAccessKeyId"), UpstreamAuthError, "(InvalidAccessKeyId)"),
        (answered(403, "403", "Forbidden"), UpstreamAuthError, "answered 403 (Forbidden)"),
        (answered(503, "SlowDown", "easy"), UpstreamUnavailable, "answered 503 (SlowDown: easy)"),
        (answered(500, "InternalError"), UpstreamUnavailable, "answered 500"),
        (answered(301, "PermanentRedirect", "elsewhere"), UpstreamError, "PermanentRedirect"),
        (answered(404, "NoSuchUpload", "aborted"), UpstreamNotFound, "NoSuchUpload"),
        # A conditional write (If-None-Match: *) that found the object: the site store's
        # election of one writer, not a failure.
        (answered(412, "PreconditionFailed", "At least one"), AlreadyExists, "answered 412"),
    ],
)
def test_s3_answers_map_by_who_can_act(error: ClientError, kind: type, says: str) -> None:
    converted = convert(error, WHERE)
    assert type(converted) is kind
    assert converted.message.startswith(WHERE)
    assert says in converted.message


def test_auth_failures_are_not_temporary_and_slow_downs_keep_retry_after() -> None:
    assert not isinstance(convert(answered(403, "AccessDenied"), WHERE), UpstreamUnavailable)
    slow = convert(answered(503, "SlowDown", **{"retry-after": "7"}), WHERE)
    assert isinstance(slow, UpstreamUnavailable)
    assert slow.delay == 7
    unsaid = convert(answered(503, "SlowDown", **{"retry-after": "soon"}), WHERE)
    assert isinstance(unsaid, UpstreamUnavailable)
    assert unsaid.delay == 0  # a header it cannot read asks for nothing


def test_the_ssrf_guard_inside_aiohttp_comes_out_as_itself() -> None:
    guard = UnsafeUpstream("127.0.0.1 is a private, loopback or link-local address")
    converted = convert(HTTPClientError(error=guard), WHERE)
    assert isinstance(converted, UnsafeUpstream)
    assert "127.0.0.1 is a private" in converted.message


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            EndpointConnectionError(endpoint_url="http://h.invalid/b", error=OSError("no DNS")),
            UpstreamUnavailable,
        ),
        (HTTPClientError(error=ConnectionResetError("reset")), UpstreamUnavailable),
        (ParamValidationError(report='Invalid bucket name "a b"'), InvalidInput),
        (NoCredentialsError(), UpstreamAuthError),
    ],
)
def test_library_failures_become_project_errors(error: Exception, kind: type) -> None:
    converted: NosanaCacheError = convert(error, WHERE)
    assert type(converted) is kind
    assert "\n" not in converted.message


def test_a_connection_failure_says_why() -> None:
    error = EndpointConnectionError(endpoint_url="http://h.invalid/b", error=OSError("no DNS"))
    assert "no DNS" in convert(error, WHERE).message
