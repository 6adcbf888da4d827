"""GET /v1/jobs/{id}/logs: whole, and followed while the op writes (the op's files written here
as the log pumps write them, its state saved as the runner saves it)."""

from __future__ import annotations

from collections import Counter

from daemon.api.context import CONTEXT
from daemon.jobs.models import JobRecord, OpRecord
from daemon.jobs.records import JobRecords
from daemon.jobs.states import JobState, OpState
from tests.unit.api.conftest import Api


def _records(api: Api) -> JobRecords:
    app = api.client.app
    assert app is not None
    records: JobRecords = app[CONTEXT].runner.records
    return records


def _job(job_id: str, *op_ids: str) -> JobRecord:
    ops = [OpRecord(id=o, type="container/run", state=OpState.RUNNING) for o in op_ids]
    return JobRecord(id=job_id, state=JobState.RUNNING, created=1.0, definition={}, ops=ops)


def _stamp(n: int) -> str:
    return f"2025-11-30T23:00:00.{n:09d}Z"


async def test_logs_are_merged_in_time_order_and_prefixed_per_op(api: Api) -> None:
    records = _records(api)
    await records.save(_job("whole", "a", "b"))
    a_out = records.output.writer("whole", "a", "stdout", None)
    a_err = records.output.writer("whole", "a", "stderr", None)
    a_err.write(_stamp(2), b"second")
    a_out.write(_stamp(1), b"first")
    a_out.write(_stamp(3), b"third")
    b_out = records.output.writer("whole", "b", "stdout", None)
    b_out.write(_stamp(0), b"other op")
    for writer in (a_out, a_err, b_out):
        writer.close()
    whole = await api.client.get("/v1/jobs/whole/logs")
    assert await whole.text() == "[a] first\n[a] second\n[a] third\n[b] other op\n"
    errors = await api.client.get("/v1/jobs/whole/logs", params={"op": "a", "stream": "stderr"})
    assert await errors.text() == "second\n"


async def test_following_a_long_log_sends_every_line_once(api: Api) -> None:
    records = _records(api)
    record = _job("follow", "op")
    await records.save(record)
    streams = {
        s: records.output.writer("follow", "op", s, after=None) for s in ("stdout", "stderr")
    }
    written: list[str] = []

    def write(count: int) -> None:
        for _ in range(count):
            n = len(written)
            stream = "stderr" if n % 3 == 0 else "stdout"
            text = f"{stream}-{n:07d} " + "y" * 60
            streams[stream].write(_stamp(n), text.encode())
            written.append(text)

    write(40_000)  # about 3 MB before the request: more than one read's worth
    response = await api.client.get("/v1/jobs/follow/logs", params={"op": "op", "follow": "true"})
    assert response.status == 200
    received = b""
    for _round in range(6):  # the op keeps writing while the response follows it
        while received.count(b"\n") < len(written):
            chunk = await response.content.readany()
            assert chunk, "the response ended while the op was running"
            received += chunk
        write(5_000)
    write(5_000)  # the last lines, written just before the op ends
    for writer in streams.values():
        writer.close()
    record.ops[0].state = OpState.COMPLETED
    await records.save(record)
    received += await response.read()
    lines = received.decode().splitlines()
    assert Counter(lines) == Counter(written)  # every line, none twice
    for stream in ("stdout", "stderr"):
        assert [x for x in lines if x.startswith(stream)] == [
            x for x in written if x.startswith(stream)
        ]


async def test_query_flags_and_streams_are_read_strictly(api: Api) -> None:
    """`?follow=` or a typo is a 400, not a quiet false (as `?stream=` is not a quiet all)."""
    await _records(api).save(_job("strict", "a"))
    for query in ("follow=", "follow=maybe", "stream=", "stream=stdin"):
        answer = await api.client.get(f"/v1/jobs/strict/logs?{query}")
        assert answer.status == 400, query
    for query in ("follow=false", "follow=0", "follow=NO", "stream=all"):
        answer = await api.client.get(f"/v1/jobs/strict/logs?{query}")
        assert answer.status == 200, query
    definition = {"version": "0.1", "type": "container", "ops": []}
    assert (await api.client.post("/v1/jobs?wait=perhaps", json=definition)).status == 400
    assert (await api.client.post("/v1/jobs?dry_run=perhaps", json=definition)).status == 400
    assert [j["id"] for j in (await (await api.client.get("/v1/jobs")).json())["jobs"]] == [
        "strict"
    ]  # refused before it was made
