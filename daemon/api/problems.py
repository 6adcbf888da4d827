"""RFC 9457 problem details: every error response of the API has this one shape.

`{type, title, status, detail}`, and for invalid input `errors: [{loc, msg}]`, served as
`application/problem+json`, so a client can always read the reason the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from ..errors import FieldError, InvalidInput, NosanaCacheError
from .models import FieldProblem, Problem, respond

PROBLEM_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    kind: str | None = None,
) -> web.Response:
    body = Problem(
        type="about:blank",
        title=title,
        status=status,
        detail=detail,
        errors=[FieldProblem(loc=e.loc, msg=e.msg) for e in errors] or None,
        kind=kind,
    )
    return respond(body, status=status, content_type=PROBLEM_TYPE, headers=headers)


def from_error(error: NosanaCacheError) -> web.Response:
    """Our error tree maps to statuses by type; invalid input carries its locations."""
    errors = error.errors if isinstance(error, InvalidInput) else ()
    return problem(error.status, error.title, error.message, errors=errors, kind=error.kind)
