"""RFC 9457 problem details: every error response of the API has this one shape.

`{type, title, status, detail}`, and for invalid input `errors: [{loc, msg}]`, served as
`application/problem+json`, so a client can always read the reason the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from ..errors import FieldError, InvalidInput, NosanaCacheError

PROBLEM_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if errors:
        body["errors"] = [{"loc": e.loc, "msg": e.msg} for e in errors]
    body.update(extra)
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def from_error(error: NosanaCacheError) -> web.Response:
    """Our error tree maps to statuses by type; invalid input carries its locations."""
    errors = error.errors if isinstance(error, InvalidInput) else ()
    return problem(error.status, error.title, error.message, errors=errors, kind=error.kind)
