"""How a response body is declared, served as JSON and described by a JSON Schema.

A body is a class declared with `@body`: a frozen, keyword-only dataclass whose fields are the
JSON's fields, in the order they are served. `respond()` serializes it through pydantic, which
emits the declared fields and nothing else; the OpenAPI document asks pydantic for the schema of
the same class (`mode="serialization"`), so what is documented is what is served.

Dataclasses, not validating models: handlers build bodies from the daemon's own state, mypy
checks every constructor call (names and types), and nothing is validated a second time on
the way out.

It sits below every HTTP package (the daemon's API and the Hub endpoint, `daemon.hub`), so
both declare their answers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, dataclass_transform

from aiohttp import web
from pydantic import ConfigDict, Field, PlainSerializer, TypeAdapter, WithJsonSchema, with_config

T = TypeVar("T")


@dataclass_transform(kw_only_default=True, frozen_default=True)
def body(cls: type[T]) -> type[T]:
    """Declare a response body. Its schema forbids fields it does not declare
    (`additionalProperties: false`), so a client or a test can tell an undocumented field."""
    declared = dataclass(frozen=True, kw_only=True)(cls)
    return with_config(ConfigDict(extra="forbid"))(declared)


def timestamp(seconds: float | None) -> str | None:
    """ISO 8601 in UTC (`2026-11-25T21:36:01Z`), or None."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


Instant = Annotated[
    float | None,
    PlainSerializer(timestamp, return_type=str | None),
    WithJsonSchema({"type": ["string", "null"], "format": "date-time"}, mode="serialization"),
]
"""A moment as the daemon keeps it (seconds since the epoch), served as `timestamp()` says."""


def _is_none(value: object) -> bool:
    return value is None


def _never_null(schema: dict[str, Any]) -> None:
    """An omitted field's schema: its value's, without the `null` it is never served as."""
    schema.pop("default", None)
    branches = [branch for branch in schema.pop("anyOf", []) if branch != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches


Omitted = Annotated[T | None, Field(exclude_if=_is_none, json_schema_extra=_never_null)]
"""A field left out of the JSON while it is None (`files` unless asked for, `errors` of a
problem without field errors): absent, never `null`. Give it the default None."""


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}
"""Each body class's serializer, built on first use (building one takes milliseconds)."""


def to_json(model: object) -> Any:
    """A body as JSON-ready data: its declared fields, in order, timestamps in ISO 8601."""
    adapter = _ADAPTERS.get(type(model))
    if adapter is None:
        adapter = _ADAPTERS[type(model)] = TypeAdapter(type(model))
    return adapter.dump_python(model, mode="json")


def respond(
    model: object,
    *,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The one way a handler answers with JSON: the body's serialization, nothing added."""
    return web.json_response(
        to_json(model), status=status, content_type=content_type, headers=headers
    )
