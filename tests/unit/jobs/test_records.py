"""Job records: typed, saved in jobs.sqlite in the shape earlier versions wrote, and shown to
clients exactly as before."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.api.models import Job, to_json
from daemon.errors import StoreError
from daemon.jobs.models import JobRecord, OpRecord, ResourceUse
from daemon.jobs.records import RETENTION, JobRecords
from daemon.jobs.states import JobState, OpState

# A record as the untyped records (dicts through json.dumps) were saved, line breaks aside:
# a volume op, an op that ran (image pulled with credentials, a hit and a writable layer, a
# port, results, a warning), one whose preparation failed half way, one never started.
EARLIER_RECORD = r"""
{"id": "3f2a9c1e0b7d4a5e", "state": "failed", "created": 1764543601.25, "started": 1764543601.5,
 "ended": 1764543660.75, "error": "hf://org/missing: no such repo",
 "definition": {"version": "0.1", "type": "container", "ops": [
   {"type": "container/run", "id": "train", "args": {"image": "registry.example/private:1",
    "authentication": {"docker": {"username": "me", "password": "hunter2"}}},
    "results": {"score": "score=(\\d+)"}}]},
 "ops": [
  {"id": "vol", "type": "container/create-volume", "group": null, "state": "completed",
   "exit_code": 0, "error": null, "run_started": 1764543601.5, "ended": 1764543601.625},
  {"id": "train", "type": "container/run", "group": "g", "state": "completed", "exit_code": 0,
   "error": null, "prepare_started": 1764543601.75,
   "image": {"ref": "registry.example/private:1", "entry_id": "img0123456789ab", "hit": false,
             "pulled": true},
   "resources": [
    {"source": "hf://TinyLlama/TinyLlama-1.1B-Chat-v1.0@main", "target": "/m", "type": "HF",
     "entry_id": "a1b2c3d4e5f60718", "hit": true, "bytes_fetched": 0,
     "path": "/var/lib/nosana-cache/views/a1b2c3d4e5f60718"},
    {"source": "s3://bucket/data", "target": "/data", "type": "S3",
     "entry_id": "0918f7e6d5c4b3a2", "hit": false, "bytes_fetched": 3145728,
     "path": "/var/lib/nosana-cache/views/0918f7e6d5c4b3a2"}],
   "lease_ids": [17, 18, 19], "prepare_ended": 1764543610.5,
   "warnings": ["gpu: true, but docker.gpu = none: running without a GPU"],
   "writable_layers": ["nosana-cache-3f2a9c1e0b7d4a5e-train-rw1"],
   "run_started": 1764543610.625, "container_name": "nosana-3f2a9c1e0b7d4a5e-train",
   "container_id": "c0ffee0123456789", "device_requests": [],
   "ports": {"8080/tcp": "127.0.0.1:32768"}, "results": {"score": ["42"]},
   "ended": 1764543659.0},
  {"id": "fetch", "type": "container/run", "group": "g", "state": "failed", "exit_code": null,
   "error": "hf://org/missing: no such repo", "prepare_started": 1764543601.75,
   "image": {"ref": "ubuntu", "entry_id": "img9876543210fe", "hit": true, "pulled": false},
   "resources": [
    {"source": null, "target": "/a", "type": "HF"},
    {"source": "ollama://registry.ollama.ai/library/llama3.1:8b",
     "target": "/root/.ollama/models", "type": "Ollama", "entry_id": "5566778899aabbcc",
     "hit": true, "bytes_fetched": 0, "path": "/var/lib/nosana-cache/views/5566778899aabbcc"}],
   "lease_ids": [20, 21], "ended": 1764543602.5},
  {"id": "later", "type": "container/run", "group": null, "state": "stopped", "exit_code": null,
   "error": "not started: hf://org/missing: no such repo"}]}
"""

# What `GET /v1/jobs/{id}` answered for that record before records were typed (computed by
# the earlier job_json, definition aside).
EARLIER_RESPONSE = {
    "id": "3f2a9c1e0b7d4a5e",
    "state": "failed",
    "created_at": "2025-11-30T23:00:01Z",
    "started_at": "2025-11-30T23:00:01Z",
    "ended_at": "2025-11-30T23:01:00Z",
    "error": "hf://org/missing: no such repo",
    "ops": [
        {
            "id": "vol",
            "type": "container/create-volume",
            "group": None,
            "state": "completed",
            "exit_code": 0,
            "error": None,
            "container_id": None,
            "image": None,
            "resources": [],
            "cache": {"hits": 0, "misses": 0, "bytes_fetched": 0},
            "timings": {
                "prepare_seconds": None,
                "run_seconds": 0.125,
                "prepare_started_at": None,
                "run_started_at": "2025-11-30T23:00:01Z",
                "ended_at": "2025-11-30T23:00:01Z",
            },
            "ports": {},
            "results": {},
            "device_requests": [],
            "warnings": [],
        },
        {
            "id": "train",
            "type": "container/run",
            "group": "g",
            "state": "completed",
            "exit_code": 0,
            "error": None,
            "container_id": "c0ffee0123456789",
            "image": {
                "ref": "registry.example/private:1",
                "entry_id": "img0123456789ab",
                "hit": False,
                "pulled": True,
            },
            "resources": [
                {
                    "source": "hf://TinyLlama/TinyLlama-1.1B-Chat-v1.0@main",
                    "target": "/m",
                    "type": "HF",
                    "entry_id": "a1b2c3d4e5f60718",
                    "hit": True,
                    "bytes_fetched": 0,
                    "path": "/var/lib/nosana-cache/views/a1b2c3d4e5f60718",
                },
                {
                    "source": "s3://bucket/data",
                    "target": "/data",
                    "type": "S3",
                    "entry_id": "0918f7e6d5c4b3a2",
                    "hit": False,
                    "bytes_fetched": 3145728,
                    "path": "/var/lib/nosana-cache/views/0918f7e6d5c4b3a2",
                },
            ],
            "cache": {"hits": 1, "misses": 2, "bytes_fetched": 3145728},
            "timings": {
                "prepare_seconds": 8.75,
                "run_seconds": 48.375,
                "prepare_started_at": "2025-11-30T23:00:01Z",
                "run_started_at": "2025-11-30T23:00:10Z",
                "ended_at": "2025-11-30T23:00:59Z",
            },
            "ports": {"8080/tcp": "127.0.0.1:32768"},
            "results": {"score": ["42"]},
            "device_requests": [],
            "warnings": ["gpu: true, but docker.gpu = none: running without a GPU"],
        },
        {
            "id": "fetch",
            "type": "container/run",
            "group": "g",
            "state": "failed",
            "exit_code": None,
            "error": "hf://org/missing: no such repo",
            "container_id": None,
            "image": {"ref": "ubuntu", "entry_id": "img9876543210fe", "hit": True, "pulled": False},
            "resources": [
                {"source": None, "target": "/a", "type": "HF"},
                {
                    "source": "ollama://registry.ollama.ai/library/llama3.1:8b",
                    "target": "/root/.ollama/models",
                    "type": "Ollama",
                    "entry_id": "5566778899aabbcc",
                    "hit": True,
                    "bytes_fetched": 0,
                    "path": "/var/lib/nosana-cache/views/5566778899aabbcc",
                },
            ],
            "cache": {"hits": 2, "misses": 0, "bytes_fetched": 0},
            "timings": {
                "prepare_seconds": None,
                "run_seconds": None,
                "prepare_started_at": "2025-11-30T23:00:01Z",
                "run_started_at": None,
                "ended_at": "2025-11-30T23:00:02Z",
            },
            "ports": {},
            "results": {},
            "device_requests": [],
            "warnings": [],
        },
        {
            "id": "later",
            "type": "container/run",
            "group": None,
            "state": "stopped",
            "exit_code": None,
            "error": "not started: hf://org/missing: no such repo",
            "container_id": None,
            "image": None,
            "resources": [],
            "cache": {"hits": 0, "misses": 0, "bytes_fetched": 0},
            "timings": {
                "prepare_seconds": None,
                "run_seconds": None,
                "prepare_started_at": None,
                "run_started_at": None,
                "ended_at": None,
            },
            "ports": {},
            "results": {},
            "device_requests": [],
            "warnings": [],
        },
    ],
}


# Fields the answer has gained since: an earlier record shows them empty.
ADDED_TO_OPS: dict[str, Any] = {
    "endpoints": [],
    "ready_at": None,
    "health": None,
    "health_detail": None,
    "restarts": 0,
    "not_acted_on": [],
    "hub_bypassed": None,
}
ADDED_TO_TIMINGS = {"ready_seconds": None}


def _with_fields_added_since(response: dict[str, Any]) -> dict[str, Any]:
    ops = [
        {**op, **ADDED_TO_OPS, "timings": {**op["timings"], **ADDED_TO_TIMINGS}}
        for op in response["ops"]
    ]
    return {**response, "ops": ops, "not_acted_on": []}


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[JobRecords]:
    opened = JobRecords(tmp_path)
    await opened.open()
    yield opened
    await opened.close()


async def _insert(records: JobRecords, job_id: str, state: str, text: str) -> None:
    """A row as an earlier version wrote it, bypassing the model."""
    await records.db.run(
        lambda c: c.execute(
            "INSERT INTO jobs (id, state, created_at, ended_at, record) VALUES (?, ?, 1, 2, ?)",
            (job_id, state, text),
        )
    )


async def test_a_record_saved_by_the_earlier_format_loads_and_shows_as_before(
    records: JobRecords,
) -> None:
    await _insert(records, "3f2a9c1e0b7d4a5e", "failed", EARLIER_RECORD)
    record = await records.get("3f2a9c1e0b7d4a5e")
    assert record.state is JobState.FAILED
    train = record.op("train")
    assert train.state is OpState.COMPLETED
    assert train.image is not None
    assert train.image.pulled is True
    assert [r.hit for r in record.op("fetch").resources] == [None, True]
    assert train.lease_ids == [17, 18, 19]
    assert record.op("later").final
    shown = to_json(Job.of(record))
    definition = shown.pop("definition")
    assert shown == _with_fields_added_since(EARLIER_RESPONSE)
    assert definition["ops"][0]["args"]["authentication"]["docker"]["password"] == "***"
    # Saved again unchanged, it is the same document: nothing added, nothing lost.
    await records.save(record)
    [row] = await records.db.read(lambda c: list(c.execute("SELECT record FROM jobs")))
    assert json.loads(row[0]) == json.loads(EARLIER_RECORD)


def _new(job_id: str, *op_ids: str) -> JobRecord:
    """A first record, as the runner makes it."""
    ops = [
        OpRecord(id=o, type="container/run", group=None, state=OpState.QUEUED, exit_code=None)
        for o in op_ids
    ]
    return JobRecord(id=job_id, state=JobState.QUEUED, created=1.0, definition={}, ops=ops)


async def test_a_field_is_saved_once_given_and_not_before(records: JobRecords) -> None:
    record = _new("j1", "a")
    op = record.ops[0]
    op.warnings.append("changed in place")  # a default list, mutated: still saved
    op.resources = [ResourceUse(source=None, target="/m", type="HF")]
    await records.save(record)
    [row] = await records.db.read(lambda c: list(c.execute("SELECT record FROM jobs")))
    [saved_op] = json.loads(row[0])["ops"]
    assert saved_op == {
        "id": "a",
        "type": "container/run",
        "group": None,
        "state": "queued",
        "exit_code": None,
        "warnings": ["changed in place"],
        "resources": [{"source": None, "target": "/m", "type": "HF"}],
    }
    loaded = await records.get("j1")
    assert loaded.ops[0].warnings == ["changed in place"]
    assert loaded.ops[0].container_id is None


# Device requests as engines record them: Docker's five keys in its order, and one an engine
# of another version might give (keys left out, a key Docker does not have).
DEVICE_REQUESTS = (
    '[{"Driver": "", "Count": -1, "DeviceIDs": null, "Capabilities": [["gpu"]], "Options": {}},'
    ' {"Count": 1, "DeviceIDs": ["0"], "Shared": true}]'
)


async def test_device_requests_are_kept_and_served_key_for_key(records: JobRecords) -> None:
    """The engine's objects, typed: what it answered is saved, loaded and served unchanged."""
    record = _new("gpu", "a")
    record.ops[0].device_requests = json.loads(DEVICE_REQUESTS)
    await records.save(record)
    loaded = await records.get("gpu")
    assert json.dumps(loaded.ops[0].device_requests) == DEVICE_REQUESTS
    await records.save(loaded)
    [row] = await records.db.read(lambda c: list(c.execute("SELECT record FROM jobs")))
    assert json.dumps(json.loads(row[0])["ops"][0]["device_requests"]) == DEVICE_REQUESTS
    [shown] = to_json(Job.of(loaded))["ops"]
    assert json.dumps(shown["device_requests"]) == DEVICE_REQUESTS


def test_a_jobs_state_follows_its_ops() -> None:
    record = _new("j", "a", "b")
    a, b = record.ops
    assert record.derive_state() is JobState.QUEUED
    a.state = OpState.PREPARING
    assert record.derive_state() is JobState.PREPARING
    b.state = OpState.RUNNING
    assert record.derive_state() is JobState.RUNNING
    a.state, b.state = OpState.COMPLETED, OpState.QUEUED
    assert record.derive_state() is JobState.RUNNING  # between ops
    record.ended = 5.0
    assert record.derive_state() is JobState.STOPPED
    b.state = OpState.FAILED
    assert record.derive_state() is JobState.FAILED
    b.state = OpState.COMPLETED
    assert record.derive_state() is JobState.COMPLETED


async def test_an_unreadable_record_is_an_error_and_does_not_hide_the_others(
    records: JobRecords,
) -> None:
    await records.save(_new("good", "a"))
    await _insert(records, "bad", "queued", '{"id": "bad", "ops": "not a list"}')
    with pytest.raises(StoreError, match="the record of job bad cannot be read"):
        await records.get("bad")
    assert [r.id for r in await records.all()] == ["good"]
    assert [r.id for r in await records.all([JobState.QUEUED])] == ["good"]


async def test_expired_jobs_go_with_their_output(records: JobRecords) -> None:
    record = _new("old", "a")
    record.ended = 1000.0
    await records.save(record)
    writer = records.output.writer("old", "a", "stdout", after=None)
    writer.write("2025-11-30T23:00:01.000000000Z", b"hello")
    writer.close()
    assert records.output.path("old", "a", "stdout").exists()
    assert await records.expire(now=1000.0 + RETENTION - 1) == 0
    assert await records.expire(now=1000.0 + RETENTION + 1) == 1
    assert not (records.output.root / "old").exists()
    assert not await records.exists("old")
