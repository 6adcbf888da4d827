"""What Nosana's schema allows and the daemon does not act on yet still parses into typed
values: markers, literals, port objects with health checks, restart policies, meta."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.errors import InvalidInput
from daemon.jobs.definition import RestartOnFailure
from daemon.jobs.markers import SpreadMarker
from daemon.jobs.ports import ExposedPort, HttpHealthCheck, WebSocketHealthCheck
from daemon.jobs.spec import RunOp, parse_job
from daemon.resources import HFResource, OllamaResource, S3Resource, parse_resource

RESULT = "%%ops.setup.results.value%%"


def job(*ops: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": "0.1", "type": "container", "ops": list(ops), **top}


def run_args(data: dict[str, Any], index: int = 0) -> Any:
    op = parse_job(data).ops[index]
    assert isinstance(op, RunOp)
    return op.args


def run(op_id: str = "a", **args: Any) -> dict[str, Any]:
    return {"type": "container/run", "id": op_id, "args": {"image": "busybox", **args}}


def test_resource_markers_are_kept_and_resources_are_the_known_ones() -> None:
    args = run_args(
        job(
            run(
                resources=[
                    "__remove-if-empty__",
                    {"__spread__": RESULT, "chunked": True},
                    {"type": "Ollama", "model": "qwen3:0.6b"},
                    {"type": "HF", "repo": "org/name", "target": "/m"},
                ]
            )
        )
    )
    marker, spread, ollama, hf = args.resource_entries
    assert marker == "__remove-if-empty__"
    assert spread == SpreadMarker(__spread__=RESULT, chunked=True)
    assert args.resources == [ollama, hf]
    assert isinstance(ollama, OllamaResource)
    assert isinstance(hf, HFResource)


def test_expose_keeps_literals_and_markers_and_ports_are_the_known_ones() -> None:
    checks = [
        {"type": "http", "path": "/", "method": "POST", "expected_status": 200.0}
        | {"body": None, "headers": {"A": "b"}, "continuous": False},
        {"type": "websocket", "expected_response": "pong", "continuous": True},
    ]
    args = run_args(
        job(
            run(
                expose=[
                    8080.0,
                    RESULT,
                    {"__spread__": RESULT},
                    {"port": 9000, "type": "api", "health_checks": checks},
                ]
            )
        )
    )
    assert args.expose[0] == 8080
    assert isinstance(args.expose[0], int)
    assert args.expose[1] == RESULT
    assert isinstance(args.expose[2], SpreadMarker)
    http, websocket = args.expose[3].health_checks
    assert isinstance(http, HttpHealthCheck)
    assert (http.expected_status, http.body) == (200, None)
    assert isinstance(websocket, WebSocketHealthCheck)
    assert [p.port for p in args.ports()] == [8080, 9000]
    assert args.ports()[1].type == "api"


def test_a_variable_standing_for_a_whole_port_becomes_that_port() -> None:
    data = job(
        run(expose=["%%global.variables.PORT%%"]), **{"global": {"variables": {"PORT": "8000"}}}
    )
    assert run_args(data).ports() == [ExposedPort(port=8000)]


def test_restart_policies_are_typed() -> None:
    policy = {"policy": "on-failure", "restart_tries": 3.0}
    assert run_args(job(run(restart_policy=policy))).restart_policy == RestartOnFailure(
        policy="on-failure", restart_tries=3
    )
    assert run_args(job(run(restart_policy="unless-stopped"))).restart_policy == "unless-stopped"


def test_a_literal_known_at_run_time_waits_for_its_check_in_a_job_only() -> None:
    resource = {"type": "Ollama", "model": RESULT, "target": "%%ops.setup.results.dir%%"}
    [parsed] = run_args(job(run(resources=[resource]))).resources
    assert isinstance(parsed, OllamaResource)
    assert parsed.model == RESULT
    with pytest.raises(InvalidInput) as caught:
        parse_resource(resource)
    assert {e.loc for e in caught.value.errors} == {"model", "target"}


def test_null_is_refused_in_a_job_and_still_read_as_absent_elsewhere() -> None:
    resource = {"type": "HF", "repo": "org/name", "revision": None, "target": "/m"}
    with pytest.raises(InvalidInput) as caught:
        parse_job(job(run(resources=[resource])))
    assert [(e.loc, e.msg) for e in caught.value.errors] == [
        ("ops[0].args.resources[0].revision", "may be left out, but not null")
    ]
    parsed = parse_resource(resource)  # the market's list and POST /v1/resources
    assert isinstance(parsed, HFResource)
    assert parsed.revision is None


def test_an_s3_resource_with_a_bucket_takes_no_files() -> None:
    resource = {"type": "S3", "url": "https://h", "bucket": "b", "files": ["a"]}
    with pytest.raises(InvalidInput) as caught:
        parse_resource(resource)
    assert [e.loc for e in caught.value.errors] == ["files"]
    assert isinstance(parse_resource({"type": "S3", "url": "https://h", "bucket": "b"}), S3Resource)


def test_variables_are_filled_in_args_and_global_only() -> None:
    variables = {"ID": "x", "WORD": "hello", "DIR": "/srv"}
    data = job(
        {
            **run("%%global.variables.ID%%", cmd="echo %%global.variables.WORD%%"),
            "results": {"r": "%%global.variables.WORD%%"},
        },
        meta={"note": "%%global.variables.NOPE%%"},
        **{"global": {"variables": variables, "work_dir": "%%global.variables.DIR%%"}},
    )
    [op] = parse_job(data).ops
    assert isinstance(op, RunOp)
    assert op.id == "%%global.variables.ID%%"  # as Nosana's node: ids are not filled
    assert op.results == {"r": "%%global.variables.WORD%%"}
    assert (op.args.cmd, op.args.work_dir) == ("echo hello", "/srv")


def test_meta_is_open_and_typed() -> None:
    meta = {"trigger": "cli", "system_requirements": {"vram_total_mb": 8192, "cuda": ["12.8"]}}
    parsed = parse_job(job(run(), meta=meta)).meta
    assert parsed is not None
    assert parsed.trigger == "cli"
    assert parsed.model_extra == {"system_requirements": meta["system_requirements"]}
    with pytest.raises(InvalidInput) as caught:
        parse_job(job(run(), meta={"a": {"b": {"c": 1}}}))
    assert [e.loc for e in caught.value.errors] == ["meta.a.b"]


def test_a_job_may_have_no_ops() -> None:
    assert parse_job(job()).ops == []
