"""Nosana's list markers: `{__spread__: literal}` and `"__remove-if-empty__"`.

When an op starts, Nosana's node replaces a `__spread__` marker by the entries its literal
stands for (an earlier op's results, JSON-decoded; `chunked` splits them), and drops
`"__remove-if-empty__"` from a list, and the list with it if nothing else is left. Markers may
stand in `expose` (spread) and `resources` (both). The daemon keeps them as typed values and
acts on the entries known now; filling a spread is the run-time layer's work.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag

from ..resources import HFResource, OllamaResource, Resource, S3Resource
from ..util.literals import is_whole_literal
from ..util.strict import Strict

REMOVE_IF_EMPTY: Final = "__remove-if-empty__"


def _spread_literal(value: str) -> str:
    if not is_whole_literal(value):
        raise ValueError(
            f"{value!r} is not a literal standing alone such as %%ops.<id>.results.<name>%%"
        )
    return value


class SpreadMarker(Strict):
    """Stands for the entries that its literal holds when the op starts."""

    spread: Annotated[str, AfterValidator(_spread_literal)] = Field(alias="__spread__")
    chunked: bool | None = None


def _kind(value: Any) -> str:
    """Decided as Nosana's validator does: a string is the marker, an object with
    `__spread__` a spread, any other object a resource (its `type` says which)."""
    if isinstance(value, str):
        return "remove-if-empty"
    if isinstance(value, dict) and "__spread__" in value:
        return "spread"
    return "resource"


ResourceEntry = Annotated[
    Annotated[Literal["__remove-if-empty__"], Tag("remove-if-empty")]
    | Annotated[SpreadMarker, Tag("spread")]
    | Annotated[Resource, Tag("resource")],
    Discriminator(_kind),
]


def concrete_resources(
    entries: list[ResourceEntry] | None,
) -> list[HFResource | S3Resource | OllamaResource] | None:
    """The resources known now, in their order; markers left out."""
    if entries is None:
        return None
    return [e for e in entries if isinstance(e, HFResource | S3Resource | OllamaResource)]
