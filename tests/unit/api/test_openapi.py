"""The OpenAPI document: valid 3.1, and every response schema generated from its model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import TypeAdapter

from daemon.api import models
from daemon.api.models import body
from daemon.api.openapi import REF, REQUESTS, RESPONSES, document, model_schemas
from daemon.hub import RepoInfo, TreeEntries


def test_each_response_schema_is_the_one_its_model_generates() -> None:
    components = document()["components"]["schemas"]
    for model in RESPONSES:
        schema = TypeAdapter(model).json_schema(ref_template=REF, mode="serialization")
        for name, nested in schema.pop("$defs", {}).items():
            assert components[name] == nested, name
        assert components[model.__name__] == schema, model.__name__


def test_every_response_model_in_the_api_is_documented() -> None:
    """A model the handlers serve but `RESPONSES` forgot would leave its route undescribed."""
    served = {name for name in models.__all__ if isinstance(getattr(models, name), type)}
    documented = set(document()["components"]["schemas"])
    assert served <= documented


def test_the_document_is_valid_openapi_3_1_and_every_reference_resolves() -> None:
    spec = document()
    validate(spec)
    components = spec["components"]["schemas"]
    references = set(_references(spec))
    assert references
    for reference in references:
        assert reference.removeprefix("#/components/schemas/") in components, reference


def test_response_schemas_are_closed_and_keep_their_enums_and_nulls() -> None:
    """What the hand-written schemas promised, and more: no undeclared field anywhere."""
    components = document()["components"]["schemas"]
    for model in RESPONSES:
        if model in (RepoInfo, TreeEntries):
            continue  # the Hub's own objects: what upstream sent beyond them passes through
        assert components[model.__name__]["additionalProperties"] is False, model.__name__
    assert components["RepoInfo"]["additionalProperties"] is True
    assert components["TreeEntry"]["additionalProperties"] is True
    assert components["DeviceRequest"]["additionalProperties"] is True  # the engine's own
    assert set(components["DeviceRequest"]["properties"]) == {
        "Driver",
        "Count",
        "DeviceIDs",
        "Capabilities",
        "Options",
    }
    assert set(components["RepoInfo"]["required"]) == {"id", "sha", "private", "gated", "siblings"}
    entry = components["Entry"]
    assert set(entry["required"]) >= {"id", "type", "state", "path", "error", "progress"}
    assert "files" not in entry["required"]
    assert entry["properties"]["type"]["enum"] == ["hf", "s3", "ollama", "image", "registry"]
    assert components["EntryState"]["enum"] == [
        "pending",
        "downloading",
        "ready",
        "failed",
        "deleting",
    ]
    assert entry["properties"]["path"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert entry["properties"]["expires_at"] == {
        "type": ["string", "null"],
        "format": "date-time",
        "title": "Expires At",
    }
    assert entry["properties"]["files"]["type"] == "array"  # absent or a list, never null


def test_two_different_schemas_under_one_name_are_refused() -> None:
    @body
    class Entry:  # not the API's Entry, but named alike
        id: int

    with pytest.raises(ValueError, match="'Entry'"):
        model_schemas(REQUESTS, (models.Entry, Entry))
    assert "Entry" in model_schemas({}, (models.Entry, models.EntryList))


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)
