"""Reading requests (a JSON body, a boolean query flag), and jobs as JSON until their records
are response models too (see `models`)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..errors import InvalidInput
from ..jobs.models import JobRecord, OpRecord
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


def job_json(record: JobRecord, *, definition: bool = True) -> dict[str, Any]:
    """A job record for clients: timestamps in ISO 8601, timings in seconds per op."""
    body = {
        "id": record.id,
        "state": record.state.value,
        "created_at": timestamp(record.created),
        "started_at": timestamp(record.started),
        "ended_at": timestamp(record.ended),
        "error": record.error,
        "ops": [_op_json(op) for op in record.ops],
    }
    if definition:
        body["definition"] = redacted(record.definition)
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


def _op_json(op: OpRecord) -> dict[str, Any]:
    image = op.image
    return {
        "id": op.id,
        "type": op.type,
        "group": op.group,
        "state": op.state.value,
        "exit_code": op.exit_code,
        "error": op.error,
        "container_id": op.container_id,
        "image": image.model_dump() if image else None,
        "resources": [r.model_dump() for r in op.resources],  # the fields given so far
        "cache": {
            "hits": sum(1 for r in op.resources if r.hit) + int(bool(image and image.hit)),
            "misses": sum(1 for r in op.resources if r.hit is False)
            + int(image is not None and image.hit is False),
            "bytes_fetched": sum(r.bytes_fetched or 0 for r in op.resources),
        },
        "timings": {
            "prepare_seconds": _span(op.prepare_started, op.prepare_ended),
            "run_seconds": _span(op.run_started, op.ended),
            "prepare_started_at": timestamp(op.prepare_started),
            "run_started_at": timestamp(op.run_started),
            "ended_at": timestamp(op.ended),
        },
        "ports": op.ports,
        "results": op.results,
        "device_requests": op.device_requests,
        "warnings": op.warnings,
    }


def _span(start: float | None, end: float | None) -> float | None:
    return round(end - start, 3) if start is not None and end is not None else None
