"""The effective configuration as an operator would write it: what `config show` prints.

Durations and sizes come back in the file's own units (`24h`, `512MiB`), secrets as `***`
unless asked for, so that the output, unmasked, is a valid config file that loads to the
same settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from ..util.units import format_duration, format_size, parse_duration, parse_size
from .schema import SECTIONS, Settings

SECRET_KEYS = {
    ("api", "token"),
    ("huggingface", "token"),
    ("s3", "secret_access_key"),
    ("site", "secret_access_key"),
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def _parsed_by(field: FieldInfo, parser: Any) -> bool:
    """Whether a field's type is `Duration` or `ByteSize` (optional or not)."""

    def annotated_with(annotation: Any) -> bool:
        if get_origin(annotation) is Annotated:
            return any(getattr(m, "func", None) is parser for m in get_args(annotation)[1:])
        return any(annotated_with(arg) for arg in get_args(annotation))

    metadata = any(getattr(m, "func", None) is parser for m in field.metadata)
    return metadata or annotated_with(field.annotation)


def effective_values(settings: Settings, *, mask_secrets: bool = True) -> dict[str, dict[str, Any]]:
    """Every key as an operator would write it in the TOML file (`24h`, `512MiB`)."""
    out: dict[str, dict[str, Any]] = {}
    for section_name in SECTIONS:
        section = getattr(settings, section_name)
        values: dict[str, Any] = {}
        for key, field in type(section).model_fields.items():
            value = getattr(section, key)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = "***" if mask_secrets else value.get_secret_value()
            elif (section_name, key) in SECRET_KEYS and mask_secrets:
                value = "***"
            elif _parsed_by(field, parse_duration):
                value = format_duration(value)
            elif _parsed_by(field, parse_size):
                value = format_size(value)
            elif isinstance(value, Path):
                value = str(value)
            elif key == "listen":
                value = [str(lst) for lst in value] if isinstance(value, list) else str(value)
            elif isinstance(value, dict):
                value = {
                    k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in value.items()
                }
            values[key] = value
        out[section_name] = values
    return out


def render_toml(settings: Settings, *, mask_secrets: bool = True) -> str:
    """The effective configuration as a TOML document (what `config show` prints)."""
    lines: list[str] = []
    for section, values in effective_values(settings, mask_secrets=mask_secrets).items():
        lines.append(f"[{section}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)
