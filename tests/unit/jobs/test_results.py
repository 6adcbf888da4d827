"""Results as Nosana's node reads them from an op's logs, and its literals filled from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.errors import JobError
from daemon.jobs.capture import extract_results
from daemon.jobs.fill import Filler
from daemon.jobs.models import Results
from daemon.jobs.output import OpOutput
from daemon.jobs.spec import RunOp, parse_job


def op_with(results: dict[str, Any]) -> RunOp:
    definition = {
        "version": "0.1",
        "type": "container",
        "ops": [
            {"type": "container/run", "id": "talk", "args": {"image": "u"}, "results": results}
        ],
    }
    [op] = parse_job(definition).run_ops()
    return op


async def results_of(tmp_path: Path, lines: list[tuple[str, str]], **results: Any) -> Results:
    output = OpOutput(tmp_path)
    writers = {s: output.writer("job", "talk", s, after=None) for s in ("stdout", "stderr")}
    for index, (stream, line) in enumerate(lines):
        writers[stream].write(f"2026-01-01T00:00:00.{index:09d}Z", line.encode())
    for writer in writers.values():
        writer.close()
    return await extract_results(output, "job", op_with(results))


async def test_a_match_gives_the_whole_match_then_each_group_as_javascripts_match(
    tmp_path: Path,
) -> None:
    found = await results_of(
        tmp_path,
        [("stdout", "score=42 score=43"), ("stderr", "oops"), ("stdout", "score=7")],
        scores="score=(\\d+)",
        pair="(a)|(score)",
        errors={"regex": "oops", "logType": ["stderr"]},
        nothing="absent",
    )
    assert found == {
        "scores": ["score=42", "42", "score=7", "7"],  # the first match of each line only
        "pair": ["score", None, "score", "score", None, "score"],
        "errors": ["oops"],
        "nothing": [],
    }


async def test_log_types_and_javascripts_regex_forms(tmp_path: Path) -> None:
    found = await results_of(
        tmp_path,
        [("stdout", "Device 0: RTX 3070"), ("stderr", "Device 1: RTX 3080")],
        stderr_only={"regex": "Device [0-9].*", "logType": ["stderr"]},
        node_errors={"regex": ".*", "logType": ["nodeerr"]},
        named="Device (?<index>\\d)",
        star="*",
        broken={"regex": "\\", "logType": ["stdout"]},
    )
    assert found["stderr_only"] == ["Device 1: RTX 3080"]
    assert found["node_errors"] == []  # the daemon has no node error stream
    assert found["named"] == ["Device 0", "0", "Device 1", "1"]
    assert found["star"] == ["", ""]  # Nosana's node reads `*` as /*/: an empty match per line
    [error] = found["broken"]
    assert error is not None
    assert error.startswith("invalid regex:")


def filler(results: dict[str, Results]) -> Filler:
    return Filler(lambda op_id: results.get(op_id), lambda op_id: f"nosana-job-{op_id}")


@pytest.mark.parametrize(
    ("text", "filled"),
    [
        ("%%ops.a.results.one%%", "42"),
        ("port %%ops.a.results.one%%", "port 42"),
        ("%%ops.a.results.two%%", "answer=42 42"),
        ("got %%ops.a.results.two%%!", "got answer=42 42!"),
        ("%%ops.a.results.none%%", ""),
        ("[%%ops.a.results.listed%%]", "[x y]"),
        ("%%ops.a.results.nulls%%", "g"),
        ("http://%%ops.gpt-oss:120b.host%%:8080", "http://nosana-job-gpt-oss:120b:8080"),
        ("%%ops.a.b.results.dotted%%", "d"),
    ],
)
def test_literals_are_filled_as_nosanas_node_fills_them(text: str, filled: str) -> None:
    results: dict[str, Results] = {
        "a": {
            "one": ["42"],
            "two": ["answer=42", "42"],
            "none": [],
            "listed": ['["x", "y"]'],
            "nulls": [None, "g", None],
        },
        "gpt-oss:120b": {},
        "a.b": {"dotted": ["d"]},
    }
    assert filler(results).text(text) == filled


def test_a_list_item_that_is_one_literal_becomes_an_item_per_value() -> None:
    fill = filler({"a": {"files": ["x.bin", "y.bin"], "one": ["1"]}})
    assert fill.items(["ls", "%%ops.a.results.files%%", "-n%%ops.a.results.one%%"]) == [
        "ls",
        "x.bin",
        "y.bin",
        "-n1",
    ]


def test_a_result_or_an_op_that_does_not_exist_fails_the_op() -> None:
    fill = filler({"a": {"one": ["1"]}})
    with pytest.raises(JobError, match="op a has no such result"):
        fill.text("%%ops.a.results.two%%")
    with pytest.raises(JobError, match="the job has no op 'b'"):
        fill.text("%%ops.b.results.one%%")
    with pytest.raises(JobError, match="the job has no op 'b'"):
        fill.text("%%ops.b.host%%")
