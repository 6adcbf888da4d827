"""Job definitions validated as strictly as Nosana's node: every error with its location."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import InvalidInput
from daemon.jobs.spec import RunOp, is_service, order, parse_job

SEED = json.loads(
    (Path(__file__).resolve().parents[3] / "tests" / "data" / "seed-job.json").read_text()
)


def locations(data: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_job(data)
    return {e.loc: e.msg for e in caught.value.errors}


def job(*ops: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": "0.1", "type": "container", "ops": list(ops), **top}


def run(op_id: str, **args: Any) -> dict[str, Any]:
    return {"type": "container/run", "id": op_id, "args": {"image": "ubuntu", **args}}


def test_the_seed_example_is_valid_unchanged() -> None:
    parsed = parse_job(SEED)
    [op] = list(parsed.run_ops())
    assert op.args.image == "ubuntu"
    assert op.args.cmd == ["ls", "/data-models"]
    assert op.args.gpu is True
    assert op.args.resources is not None
    assert op.args.resources[0].target == "/data-models/"


@pytest.mark.parametrize(
    ("mutate", "where", "message"),
    [
        (lambda d: d.update(colour=1), "colour", "unknown property"),
        (lambda d: d["ops"][0]["args"].update(gpus=1), "ops[0].args.gpus", "unknown property"),
        (
            lambda d: d["ops"][0]["args"]["resources"][0].update(repoo="x"),
            "ops[0].args.resources[0].repoo",
            "unknown property",
        ),
        (
            lambda d: d["ops"][0]["args"]["resources"][0].pop("repo"),
            "ops[0].args.resources[0].repo",
            "Field required",
        ),
        (
            lambda d: d["ops"][0]["args"]["resources"][0].update(target="data"),
            "ops[0].args.resources[0].target",
            "must be an absolute path in the container",
        ),
        (
            lambda d: d["ops"][0]["args"]["resources"][0].update(type="FTP"),
            "ops[0].args.resources[0].type",
            "`type` must be one of HF, S3, Ollama",
        ),
        (lambda d: d["ops"][0]["args"].pop("image"), "ops[0].args.image", "Field required"),
        (
            lambda d: d["ops"][0]["args"].update(work_dir="rel"),
            "ops[0].args.work_dir",
            "'rel' must be an absolute path",
        ),
        (lambda d: d["ops"][0].update(type="container/exec"), "ops[0].type", "container/run"),
        (lambda d: d.update(type="vm"), "type", "'container'"),
        (lambda d: d["ops"][0]["args"].update(cmd=5), "ops[0].args.cmd", "a string or a list"),
        (lambda d: d["ops"][0]["args"].update(env={"A": 1}), "ops[0].args.env.A", "string"),
        (lambda d: d["ops"][0]["args"].update(expose="80-90"), "ops[0].args.expose", "not a port"),
        (lambda d: d["ops"][0]["args"].update(expose=[80, 80]), "ops[0].args.expose[1]", "twice"),
        (lambda d: d.update(version="0.2"), "version", "'0.1'"),
        (lambda d: d["ops"][0]["args"].update(gpu=None), "ops[0].args.gpu", "not null"),
    ],
)
def test_each_mistake_is_named_by_its_location(mutate: Any, where: str, message: str) -> None:
    data = copy.deepcopy(SEED)
    mutate(data)
    found = locations(data)
    assert any(loc == where and message in msg for loc, msg in found.items()), found


def test_every_error_is_reported_at_once() -> None:
    data = job(run("a", colour=1), {"type": "container/run", "id": "b", "args": {}})
    found = locations(data)
    assert set(found) == {"ops[0].args.colour", "ops[1].args.image"}


def test_op_ids_unique_and_dependencies_named_and_acyclic() -> None:
    assert locations(job(run("a"), run("a")))["ops[1].id"] == "duplicate op id 'a'"
    found = locations(
        job(
            run(
                "a",
            ),
            {**run("b"), "execution": {"depends_on": ["nope"]}},
        )
    )
    assert found["ops[1].execution.depends_on[0]"] == "no op 'nope' in this job"
    cyclic = job({**run("a"), "execution": {"depends_on": ["b"]}}, run("b"))
    assert "cycle" in locations(cyclic)["ops"]
    assert locations(job(run("bad id")))["ops[0].id"].startswith("'bad id' is not an op id")
    assert [op.id for op in parse_job(job(run("gpt-oss:120b"), run("模型"))).ops] == [
        "gpt-oss:120b",
        "模型",
    ]


def test_variables_fill_placeholders_and_a_missing_one_is_an_error() -> None:
    data = job(
        run("a", image="%%global.variables.IMAGE%%", cmd="echo %%global.variables.WORD%%"),
        **{"global": {"variables": {"IMAGE": "busybox", "WORD": "hello"}}},
    )
    op = parse_job(data).ops[0]
    assert isinstance(op, RunOp)
    assert (op.args.image, op.args.cmd) == ("busybox", "echo hello")
    missing = job(run("a", cmd="%%global.variables.NOPE%%"))
    assert locations(missing)["ops[0].args.cmd"] == "no variable 'NOPE' in global.variables"


def test_global_gives_defaults_and_env_is_merged() -> None:
    data = job(
        run("a", env={"B": "op", "C": "op"}),
        run("b", image="alpine", gpu=False),
        **{
            "global": {
                "image": "busybox",
                "gpu": True,
                "env": {"A": "g", "B": "g"},
                "work_dir": "/w",
            }
        },
    )
    a, b = parse_job(data).ops
    assert isinstance(a, RunOp)
    assert isinstance(b, RunOp)
    assert (a.args.image, a.args.gpu, a.args.work_dir) == ("ubuntu", True, "/w")
    assert a.args.env == {"A": "g", "B": "op", "C": "op"}
    assert (b.args.image, b.args.gpu) == ("alpine", False)


def test_every_run_op_names_its_image_even_with_a_global_one() -> None:
    """Nosana's validator tells a run op's args by their `image`: `global.image` does not
    stand in for it (its node would fall back to it, but never gets that far)."""
    data = job(
        {"type": "container/run", "id": "a", "args": {"cmd": "ls"}},
        **{"global": {"image": "busybox"}},
    )
    assert locations(data)["ops[0].args.image"] == "Field required"


def test_groups_run_one_after_another_and_depends_on_adds_edges() -> None:
    data = job(
        {**run("prep"), "execution": {"group": "first"}},
        {**run("w1"), "execution": {"group": "work"}},
        {**run("w2"), "execution": {"group": "work"}},
        {**run("after"), "execution": {"depends_on": ["w1"]}},
        {**run("side"), "execution": {"group": "first"}},
    )
    waits = order(parse_job(data))
    assert waits["prep"].stages == waits["side"].stages == set()
    assert waits["w1"].stages == waits["w2"].stages == {"prep", "side"}
    assert waits["after"].stages == {"w1", "w2"}  # and through them, prep and side
    assert waits["after"].depends_on == {"w1"}
    assert waits["w1"].stages is waits["w2"].stages  # one set per stage, not one per op


def test_volumes_must_be_made_by_a_create_volume_op_and_targets_are_required() -> None:
    data = job(run("a", volumes=[{"name": "cache", "dest": "/cache"}]))
    assert (
        "no container/create-volume op makes 'cache'"
        in locations(data)["ops[0].args.volumes[0].name"]
    )
    ok = job(
        {"type": "container/create-volume", "id": "v", "args": {"name": "cache"}},
        run("a", volumes=[{"name": "cache", "dest": "/cache"}]),
    )
    parse_job(ok)
    no_target = job(run("a", resources=[{"type": "HF", "repo": "org/x"}]))
    assert "required" in locations(no_target)["ops[0].args.resources[0].target"]
    ollama = job(run("a", resources=[{"type": "Ollama", "model": "llama3:8b"}]))
    parse_job(ollama)  # Ollama has a default target


def test_an_op_that_depends_on_a_service_of_its_group_waits_for_it_to_be_ready() -> None:
    """A service may never end: its dependents in its group start once it is ready (as on
    Nosana's node); the next group waits for the whole group to end, a service included."""
    parsed = parse_job(
        job(
            {**run("web", expose=8080), "execution": {"group": "up"}},
            {**run("client"), "execution": {"group": "up", "depends_on": ["web"]}},
            {**run("batch"), "execution": {"group": "up", "depends_on": ["client"]}},
            run("after"),
        )
    )
    waits = order(parsed)
    assert [is_service(op) for op in parsed.ops] == [True, False, False, False]
    assert waits["client"].met(completed=set(), ready={"web"})
    assert not waits["batch"].met(completed=set(), ready={"web"})  # client must have ended
    assert waits["batch"].met(completed={"client"}, ready=set())
    assert not waits["after"].met(completed={"client", "batch"}, ready={"web"})
    assert waits["after"].met(completed={"web", "client", "batch"}, ready=set())
