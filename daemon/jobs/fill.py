"""`%%ops.<id>.results.<name>%%` and `%%ops.<id>.host%%` in an op's `cmd`, `entrypoint` and
`env`, filled when the op starts, as Nosana's node fills them.

- `results.<name>`: the values an earlier op's results pattern matched (`capture`). A string
  that is one literal and nothing else, standing for exactly one value, becomes that value;
  otherwise the values are joined with spaces (a value that is a JSON list counts as its
  items). In a list (`cmd` as a list), an item that is one literal becomes one item per
  value. No match is the empty string; a result the op does not have, or an op the job does
  not have, fails the op.
- `host`: the name the op's container answers to on the job's network.

An id is any text without a space (`gpt-oss:120b`), and the last `.results.` separates it
from the name.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

from ..errors import JobError
from .models import Results

ResultsOf = Callable[[str], Results | None]
"""An op's results by its id; None when the job has no such op."""

LITERAL = re.compile(r"%%ops\.([^%\s]+)\.(?:results\.([^%\s]+)|(host))%%")


class Filler:
    def __init__(self, results_of: ResultsOf, host_of: Callable[[str], str]) -> None:
        self.results_of = results_of
        self.host_of = host_of

    def text(self, text: str) -> str:
        """A string with its literals filled."""
        whole = LITERAL.fullmatch(text)
        if whole is not None:
            values = self._values(whole)
            if len(values) == 1:
                return values[0]
            return " ".join(values)
        return LITERAL.sub(lambda match: " ".join(self._values(match)), text)

    def items(self, items: list[str]) -> list[str]:
        """A list whose items that are one literal each become one item per value."""
        out: list[str] = []
        for item in items:
            whole = LITERAL.fullmatch(item)
            out += self._values(whole) if whole is not None else [self.text(item)]
        return out

    def _values(self, match: re.Match[str]) -> list[str]:
        op_id, name, host = match.groups()
        results = self.results_of(op_id)
        if results is None:
            raise JobError(f"{match.group(0)}: the job has no op {op_id!r}")
        if host:
            return [self.host_of(op_id)]
        if name not in results:
            raise JobError(f"{match.group(0)}: op {op_id} has no such result")
        return _tokens(results[name])


def _tokens(values: list[Any]) -> list[str]:
    """Values as words: JSON lists opened, nulls dropped."""
    out: list[str] = []
    for value in values:
        if isinstance(value, str) and value.strip().startswith("["):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if isinstance(value, list):
            out += _tokens(value)
        elif value is not None:
            out.append(value if isinstance(value, str) else json.dumps(value))
    return out
