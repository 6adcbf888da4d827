"""Response bodies: what they serve is what they declare, and what their schema says."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pydantic import TypeAdapter

from daemon.api.models import (
    DockerStatus,
    FieldProblem,
    Instant,
    Omitted,
    PeriodicTask,
    Problem,
    body,
    respond,
    timestamp,
    to_json,
)
from daemon.engine.client import EngineStatus


def test_an_omitted_field_is_absent_while_none_and_never_documented_as_null() -> None:
    bare = Problem(type="about:blank", title="Not found", status=404, detail="no entry x")
    assert to_json(bare) == {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "no entry x",
    }
    located = Problem(
        type="about:blank",
        title="Invalid input",
        status=400,
        detail="invalid resource",
        errors=[FieldProblem(loc="repo", msg="required")],
        kind="InvalidInput",
    )
    assert list(to_json(located)) == ["type", "title", "status", "detail", "errors", "kind"]
    assert to_json(located)["errors"] == [{"loc": "repo", "msg": "required"}]
    schema = TypeAdapter(Problem).json_schema(mode="serialization")
    assert schema["required"] == ["type", "title", "status", "detail"]
    assert schema["properties"]["kind"] == {"title": "Kind", "type": "string"}
    assert schema["properties"]["errors"]["type"] == "array"


def test_an_omitted_union_keeps_every_branch_but_null() -> None:
    @body
    class Either:
        value: Omitted[int | str] = None

    schema = TypeAdapter(Either).json_schema(mode="serialization")
    assert schema["properties"]["value"] == {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "title": "Value",
    }


def test_instants_are_served_in_iso_8601_utc_and_documented_as_date_time() -> None:
    task = PeriodicTask(runs=1, failures=0, last_error=None, last_run_at=1_800_000_000.75)
    assert to_json(task)["last_run_at"] == "2027-01-15T08:00:00Z" == timestamp(1_800_000_000)
    never = PeriodicTask(runs=0, failures=0, last_error=None, last_run_at=None)
    assert to_json(never)["last_run_at"] is None
    schema = TypeAdapter(Instant).json_schema(mode="serialization")
    assert schema == {"type": ["string", "null"], "format": "date-time"}


def test_a_body_takes_only_its_declared_fields_and_cannot_change() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'extra'"):
        FieldProblem(loc="a", msg="b", extra=1)  # type: ignore[call-arg]
    problem = FieldProblem(loc="a", msg="b")
    with pytest.raises(AttributeError):
        problem.loc = "c"  # type: ignore[misc]


def test_respond_serves_the_body_as_json_with_the_given_status_and_type() -> None:
    problem = Problem(type="about:blank", title="Conflict", status=409, detail="pinned")
    response = respond(problem, status=409, content_type="application/problem+json")
    assert response.status == 409
    assert response.content_type == "application/problem+json"
    assert response.text is not None
    assert json.loads(response.text) == to_json(problem)


def test_the_docker_section_serves_everything_the_engine_reports() -> None:
    """It was `asdict(status)` plus `has_gpu`: a field added to `EngineStatus` must not be
    left out of /v1/status silently."""
    reported = EngineStatus(
        host="unix:///run/docker.sock",
        reachable=True,
        version="20.10.24",
        api_version="1.41",
        runtimes=["runc", "nvidia"],
        gpu_devices=[],
        registry_mirrors=["http://127.0.0.1:9812"],
        error=None,
    )
    served = to_json(DockerStatus.of(reported))
    assert served == dataclasses.asdict(reported) | {"has_gpu": True}
