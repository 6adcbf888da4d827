"""Jobs of any size and shape cost time and memory in proportion to their size (issue 25):
the growth is measured with what does not depend on the machine's speed (the graph's edges,
peak memory under tracemalloc); bench/bounds.py has the wall times."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from daemon.errors import InvalidInput, TooLarge
from daemon.jobs.definition import JobDefinition
from daemon.jobs.graph import edges, order
from daemon.jobs.spec import parse_job
from daemon.util.limits import JOB_OPS, JSON_DEPTH

BIG = 20_000


def run(op_id: str, **execution: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"type": "container/run", "id": op_id, "args": {"image": "busybox"}}
    if execution:
        op["execution"] = execution
    return op


def job(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": "0.1", "type": "container", "ops": ops}


def one_group(n: int, groups: int = 1) -> dict[str, Any]:
    """`n` ops in `groups` groups one after another: each op of a group waits for all of
    the group before (as two groups of 10,000: what was 10⁸ set members)."""
    return job([run(f"op{i}", group=f"g{i * groups // n}") for i in range(n)])


def chain(n: int) -> dict[str, Any]:
    """`n` ops of one group, each depending on the next: a search from the first goes `n`
    deep (a recursive one died at 1,500)."""
    return job(
        [
            run(f"op{i}", group="g", **({"depends_on": [f"op{i + 1}"]} if i + 1 < n else {}))
            for i in range(n)
        ]
    )


def steps(document: dict[str, Any]) -> int:
    """The edges of the job's graph: what validation and scheduling walk."""
    parsed = JobDefinition.model_validate(document)
    return sum(len(after) for after in edges(parsed).values())


def peak_bytes(document: dict[str, Any]) -> int:
    tracemalloc.start()
    try:
        parse_job(document, max_ops=BIG)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


SHAPES: dict[str, Callable[[int], dict[str, Any]]] = {
    "one group": one_group,
    "two groups": lambda n: one_group(n, groups=2),
    "a group per op": lambda n: job([run(f"op{i}") for i in range(n)]),
    "a chain": chain,
    "a chain by stages": lambda n: job(
        [run(f"op{i}", **({"depends_on": [f"op{i - 1}"]} if i else {})) for i in range(n)]
    ),
}


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_the_graph_of_a_job_grows_with_its_ops_not_their_square(shape: str) -> None:
    make = SHAPES[shape]
    for n in (1, 10, 1_000, BIG):
        assert steps(make(n)) <= 3 * n, (shape, n)


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_validating_ten_times_the_ops_takes_about_ten_times_the_memory(shape: str) -> None:
    make = SHAPES[shape]
    small, big = peak_bytes(make(500)), peak_bytes(make(5_000))
    assert big < 13 * small, (shape, small, big)  # quadratic: 100 times


def test_a_chain_of_twenty_thousand_ops_is_valid_and_waits_in_order() -> None:
    parsed = parse_job(chain(BIG), max_ops=BIG)
    waits = order(parsed)
    assert waits["op0"].depends_on == {"op1"}
    assert waits[f"op{BIG - 1}"].depends_on == set()


def test_a_cycle_at_the_end_of_a_long_chain_is_found_and_named() -> None:
    document = chain(BIG)
    document["ops"][-1]["execution"]["depends_on"] = ["op0"]
    with pytest.raises(InvalidInput) as caught:
        parse_job(document, max_ops=BIG)
    [error] = caught.value.errors
    assert error.loc == "ops"
    assert error.msg.endswith(f"op{BIG - 2} → op{BIG - 1} → op0")


def test_a_cycle_through_the_order_of_groups_is_named_by_its_ops() -> None:
    document = job([run("a", group="first", depends_on=["b"]), run("b", group="second")])
    with pytest.raises(InvalidInput) as caught:
        parse_job(document)
    assert [e.msg for e in caught.value.errors] == [
        "the ops depend on each other in a cycle: a → b → a"
    ]


def test_a_job_past_the_bound_on_ops_is_refused_before_it_is_validated() -> None:
    assert parse_job(one_group(JOB_OPS.limit))
    document = one_group(BIG)
    document["ops"][5] = {"not": "an op"}  # never looked at
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge) as caught:
            parse_job(document)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [error] = caught.value.errors
    assert error.loc == "ops"
    assert "20,000 ops: more than the 1,000" in error.msg
    assert "job.ops" in error.msg
    assert caught.value.status == 413
    assert peak < 64 * 1024  # nothing of the 20,000 ops was copied or validated


def test_a_job_nested_past_the_bound_is_refused_without_recursion() -> None:
    document = job([run("a")])
    deep: Any = "x"
    for _ in range(50_000):  # deeper than any recursion limit
        deep = [deep]
    document["meta"] = {"deep": deep}
    with pytest.raises(TooLarge) as caught:
        parse_job(document)
    assert "json.depth" in caught.value.message
    ok = job([run("a")]) | {"meta": {"deep": [[["x"]]]}}
    with pytest.raises(InvalidInput):  # the meta model refuses it, but no bound does
        parse_job(ok)
    assert JSON_DEPTH.limit >= 16
