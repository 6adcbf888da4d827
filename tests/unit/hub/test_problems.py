"""Errors leave as the Hub gives them: status, X-Error-Code, X-Error-Message, JSON."""

from __future__ import annotations

import json

from daemon.errors import (
    InsufficientSpace,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRefused,
    UpstreamUnavailable,
)
from daemon.hub.problems import EntryNotFound, from_error


def test_upstreams_refusal_passes_as_it_came() -> None:
    refused = UpstreamRefused("x", status=401, code="GatedRepo", reason="Access is restricted.")
    answer = from_error(refused)
    assert answer.status == 401
    assert answer.headers["X-Error-Code"] == "GatedRepo"
    assert answer.headers["X-Error-Message"] == "Access is restricted."
    assert answer.body is not None
    assert json.loads(bytes(answer.body)) == {"error": "Access is restricted."}  # type: ignore[arg-type]


def test_a_missing_entry_names_the_commit() -> None:
    answer = from_error(EntryNotFound("org/m: a.bin does not exist", "c" * 40))
    assert (answer.status, answer.headers["X-Error-Code"]) == (404, "EntryNotFound")
    assert answer.headers["X-Repo-Commit"] == "c" * 40


def test_what_only_the_cache_can_say_gets_a_gateways_status() -> None:
    down = UpstreamUnavailable("hf: connection refused")
    assert from_error(down).status == 502
    slow = UpstreamUnavailable("hf: timed out")
    slow.__cause__ = TimeoutError()
    assert from_error(slow).status == 504
    assert from_error(InsufficientSpace(10, 5)).status == 507
    assert from_error(UpstreamError("hf: not JSON")).status == 502
    assert from_error(UpstreamAuthError("cdn: 403")).status == 403  # refused mid-download
    assert from_error(UpstreamNotFound("cdn: 404")).headers["X-Error-Code"] == "EntryNotFound"
    assert "X-Error-Code" not in from_error(down).headers


def test_a_message_becomes_one_printable_header_line() -> None:
    answer = from_error(UpstreamUnavailable("line one\nline two: caf\u00e9 " + "x" * 900))
    header = answer.headers["X-Error-Message"]
    assert "\n" not in header
    assert header.isascii()
    assert len(header) <= 500
