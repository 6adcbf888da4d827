"""Reading requests (a JSON body, a boolean query flag), and jobs as JSON until their records
are response models too (see `models`)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..errors import InvalidInput
from .models import timestamp


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 that says why not."""
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidInput("the body is not JSON this daemon accepts: nested too deeply") from exc


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def job_json(record: dict[str, Any], *, definition: bool = True) -> dict[str, Any]:
    """A job record for clients: timestamps in ISO 8601, timings in seconds per op."""
    body = {
        "id": record["id"],
        "state": record["state"],
        "created_at": timestamp(record.get("created")),
        "started_at": timestamp(record.get("started")),
        "ended_at": timestamp(record.get("ended")),
        "error": record.get("error"),
        "ops": [_op_json(op) for op in record["ops"]],
    }
    if definition:
        body["definition"] = redacted(record.get("definition"))
    return body


SECRET_FIELDS = frozenset({"password", "accessToken", "SECRET_ACCESS_KEY"})
"""Fields of a job definition that hold credentials (registry password, HF token, S3 secret):
kept for the daemon's own use (a restart may need to pull again), never shown back."""


def redacted(document: Any) -> Any:
    """`document` with every credential field's value replaced by `***`."""
    if isinstance(document, dict):
        return {
            key: "***" if key in SECRET_FIELDS and value else redacted(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [redacted(item) for item in document]
    return document


def _op_json(op: dict[str, Any]) -> dict[str, Any]:
    prepare = _span(op.get("prepare_started"), op.get("prepare_ended"))
    run = _span(op.get("run_started"), op.get("ended"))
    resources = op.get("resources") or []
    return {
        "id": op["id"],
        "type": op["type"],
        "group": op.get("group"),
        "state": op["state"],
        "exit_code": op.get("exit_code"),
        "error": op.get("error"),
        "container_id": op.get("container_id"),
        "image": op.get("image"),
        "resources": resources,
        "cache": {
            "hits": sum(1 for r in resources if r.get("hit"))
            + int(bool((op.get("image") or {}).get("hit"))),
            "misses": sum(1 for r in resources if r.get("hit") is False)
            + int((op.get("image") or {}).get("hit") is False),
            "bytes_fetched": sum(r.get("bytes_fetched") or 0 for r in resources),
        },
        "timings": {
            "prepare_seconds": prepare,
            "run_seconds": run,
            "prepare_started_at": timestamp(op.get("prepare_started")),
            "run_started_at": timestamp(op.get("run_started")),
            "ended_at": timestamp(op.get("ended")),
        },
        "ports": op.get("ports") or {},
        "results": op.get("results") or {},
        "device_requests": op.get("device_requests") or [],
        "warnings": op.get("warnings") or [],
    }


def _span(start: float | None, end: float | None) -> float | None:
    return round(end - start, 3) if start is not None and end is not None else None
