"""What every model of an input document (a job definition, a resource) shares.

`Strict`: unknown properties refused, no coercion, frozen; and in a job definition, where
Nosana's validator refuses it, `null` for a property that may only be left out.

Unions are tagged, so that an error names the one member the value was meant to be instead
of every member it is not: by the `type` property (`by_type`), or by the kind of JSON value
(`by_kind`: a string, a list, an object...), as Nosana's validator decides them.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Discriminator, ValidationInfo, field_validator

from .literals import in_job


class Strict(BaseModel):
    """`nullable` names the fields whose value may be anything, `null` included."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and in_job(info) and info.field_name not in cls.nullable:
            raise ValueError("may be left out, but not null")
        return value


def type_tag(value: Any) -> str | None:
    """The `type` that picks a member of a tagged union (`None`: there is none).

    A callable rather than pydantic's field discriminator, which forbids the validator that
    refuses `null` in every field of a `Strict` model."""
    found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return found if isinstance(found, str) or found is None else json.dumps(found)


by_type = Discriminator(type_tag)


def json_kind(value: Any) -> str:
    """`string`, `number`, `boolean`, `list`, `object` or `null`, as JSON says it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    return "null" if value is None else "object"


def by_kind(expected: str) -> Discriminator:
    """Members tagged `string`, `list`...; any other kind fails with `must be {expected}`."""
    return Discriminator(
        json_kind, custom_error_type="wrong_kind", custom_error_message=f"must be {expected}"
    )
