"""Building a container's create request is pure: a function of the op, what preparing it made
and found out (`ContainerInputs`), and the earlier ops' results. No engine, store or clock is
reached for: these tests have none, and the same inputs give the same spec."""

from __future__ import annotations

from typing import Any

from daemon.engine.containers import Bind
from daemon.jobs.container import ContainerInputs, container_spec
from daemon.jobs.fill import ResultsOf
from daemon.jobs.models import Results
from daemon.jobs.names import volume_name
from daemon.jobs.spec import RunOp, parse_job

HUB = ("http://nosana-cache.internal:8090/hf", "nosana-cache.internal:172.17.0.1")


def op(**args: Any) -> RunOp:
    document = {
        "version": "0.1",
        "type": "container",
        "ops": [
            {"type": "container/create-volume", "id": "v", "args": {"name": "scratch"}},
            {"type": "container/run", "id": "run", "args": {"image": "busybox", **args}},
        ],
    }
    [_volume, run] = parse_job(document).ops
    assert isinstance(run, RunOp)
    return run


def inputs(**changes: Any) -> ContainerInputs:
    given: dict[str, Any] = {
        "job_id": "j1",
        "views": ["/host/store/views/e1", "/host/store/views/e2"],
        "layers": {1: "layer-of-data"},
        "gpu": True,
        "hub": HUB,
        "network": "nosana-cache-j1",
    }
    return ContainerInputs(**(given | changes))


RESOURCES = [
    {"type": "HF", "repo": "org/model", "target": "/models/m/"},
    {"type": "S3", "url": "s3://bucket/data", "target": "/data", "allowWrite": True},
]


def results(found: dict[str, Results]) -> ResultsOf:
    return found.get


NONE: dict[str, Results] = {}


def test_the_same_inputs_give_the_same_spec_and_nothing_else_is_asked() -> None:
    run = op(
        cmd="echo %%ops.first.results.word%%",
        env={"A": "%%ops.first.results.word%%"},
        resources=RESOURCES,
        volumes=[{"name": "scratch", "dest": "/scratch"}],
        gpu=True,
        expose=8080,
        aliases=["svc"],
        restart_policy="always",
    )
    earlier: dict[str, Results] = {"first": {"word": ["hello"]}}
    one = container_spec(run, inputs(), results(earlier))
    two = container_spec(run, inputs(), results(earlier))
    assert one == two
    assert (one.name, one.job_id, one.op_id) == (two.name, "j1", "run")
    assert one.cmd == ["/bin/sh", "-c", "echo hello"]
    assert (one.env["A"], one.env["NOSANA_ID"]) == ("hello", "j1")
    # A view is bound read-only at its target; the allowWrite resource gets its layer.
    assert one.binds == [Bind("/host/store/views/e1", "/models/m")]
    assert one.volumes == {"layer-of-data": "/data", volume_name("j1", "scratch"): "/scratch"}
    assert (one.gpu, one.network, one.aliases) == (True, "nosana-cache-j1", ["svc"])
    assert one.ports == ["8080/tcp"]
    assert one.restart == {"Name": "unless-stopped"}
    assert one.env["HF_ENDPOINT"] == HUB[0]
    assert one.extra_hosts == [HUB[1]]


def test_what_preparation_found_is_what_the_spec_says() -> None:
    run = op(resources=RESOURCES[:1])
    spec = container_spec(
        run, inputs(views=["/v/e1"], layers={}, gpu=False, hub=None), results(NONE)
    )
    assert spec.binds == [Bind("/v/e1", "/models/m")]
    assert spec.gpu is False
    assert "HF_ENDPOINT" not in spec.env
    assert spec.extra_hosts == []


def test_the_jobs_own_hub_endpoint_wins() -> None:
    run = op(env={"HF_ENDPOINT": "https://hub.example"})
    spec = container_spec(run, inputs(views=[], layers={}), results(NONE))
    assert spec.env["HF_ENDPOINT"] == "https://hub.example"
    assert "MODEL_ENDPOINT" not in spec.env
    assert spec.extra_hosts == []
