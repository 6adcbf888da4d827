"""`%%global.variables.NAME%%` literals, filled from the job's `global.variables` before the
job is validated, so that what the daemon checks and runs is what the op will see.

Nosana's node fills literals in an op's `args` when the op starts; the daemon fills the
variables at once, in `args` and in `global` (whose values become the ops' defaults), and
leaves the rest of the document as written (op ids, `execution`, `results`, `meta`). A
variable that does not exist is an error here; on Nosana's node it fails the op at run time.

Where Nosana takes a literal standing alone in place of another kind of value, the literal
keeps that place: a whole `expose` entry filled from a variable is the port number the
variable holds, and a `__spread__` marker's literal is left for the op's start, like every
`%%ops.<id>.results.<name>%%`.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import FieldError
from ..resources import join_location
from ..util.literals import is_whole_literal

_VARIABLE = re.compile(r"%%global\.variables\.([A-Za-z0-9_.-]+)%%")
_DIGITS = re.compile(r"[0-9]{1,5}")


class _Filler:
    def __init__(self, variables: dict[str, Any], errors: list[FieldError]) -> None:
        self.variables = variables
        self.errors = errors

    def text(self, value: str, loc: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            found = self.variables.get(name)
            if not isinstance(found, str):
                self.errors.append(FieldError(loc, f"no variable {name!r} in global.variables"))
                return match.group(0)
            return found

        return _VARIABLE.sub(replace, value)

    def any(self, value: Any, loc: str) -> Any:
        if isinstance(value, str):
            return self.text(value, loc)
        if isinstance(value, list):
            return [self.any(v, f"{loc}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {
                k: v if k == "__spread__" else self.any(v, join_location(loc, k))
                for k, v in value.items()
            }
        return value

    def expose_entry(self, value: Any, loc: str) -> Any:
        """A whole variable literal becomes the port it holds; other literals stay."""
        whole = _VARIABLE.fullmatch(value) if isinstance(value, str) else None
        if whole is None:
            return value if is_whole_literal(value) else self.any(value, loc)
        filled = self.text(value, loc)
        if filled == value:
            return value  # no such variable: said already
        if not _DIGITS.fullmatch(filled):
            self.errors.append(
                FieldError(loc, f"global.variables.{whole.group(1)} is {filled!r}, not a port")
            )
            return value
        return int(filled)

    def args(self, args: dict[str, Any], loc: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in args.items():
            where = join_location(loc, key)
            if key != "expose":
                out[key] = self.any(value, where)
            elif isinstance(value, list):
                out[key] = [self.expose_entry(v, f"{where}[{i}]") for i, v in enumerate(value)]
            else:
                out[key] = self.expose_entry(value, where)
        return out


def fill_variables(data: dict[str, Any], errors: list[FieldError]) -> dict[str, Any]:
    """A copy of `data` with the variables filled; a missing one is added to `errors`."""
    glob = data.get("global")
    variables = glob.get("variables") if isinstance(glob, dict) else None
    filler = _Filler(variables if isinstance(variables, dict) else {}, errors)
    out = dict(data)
    if isinstance(glob, dict):
        out["global"] = {
            k: v if k == "variables" else filler.any(v, join_location("global", k))
            for k, v in glob.items()
        }
    ops = data.get("ops")
    if isinstance(ops, list):
        out["ops"] = [_fill_op(filler, op, index) for index, op in enumerate(ops)]
    return out


def _fill_op(filler: _Filler, op: Any, index: int) -> Any:
    if not isinstance(op, dict) or not isinstance(op.get("args"), dict):
        return op
    return {**op, "args": filler.args(op["args"], f"ops[{index}].args")}
