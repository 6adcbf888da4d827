"""The body of every error response: an RFC 9457 problem."""

from __future__ import annotations

from ...util.wire import Omitted, body


@body
class FieldProblem:
    """One invalid field: where it is (`ops[0].args.image`) and what is wrong with it."""

    loc: str
    msg: str


@body
class Problem:
    """What went wrong, served as `application/problem+json`. `kind` names the daemon's error
    (absent where the HTTP layer answers alone: an unknown route or method, a missing token, an
    unexpected crash); `errors` lists every invalid field of an invalid input."""

    type: str
    title: str
    status: int
    detail: str
    errors: Omitted[list[FieldProblem]] = None
    kind: Omitted[str] = None
