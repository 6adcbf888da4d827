"""The API's bounds on a job (issue 25): a body past `api.body_bytes` and a job past
`job.ops` are 413 problem+json up front, and the API keeps answering while a big one comes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from daemon.util.limits import API_BODY_BYTES, JOB_OPS
from tests.unit.api.conftest import Api


def ops_job(n: int, **execution: Any) -> dict[str, Any]:
    ops = [
        {"type": "container/run", "id": f"op{i}", "args": {"image": "busybox"}}
        | ({"execution": dict(execution)} if execution else {})
        for i in range(n)
    ]
    return {"version": "0.1", "type": "container", "ops": ops}


def chain(n: int) -> dict[str, Any]:
    document = ops_job(n, group="g")
    for i, op in enumerate(document["ops"][:-1]):
        op["execution"]["depends_on"] = [f"op{i + 1}"]
    return document


async def test_a_job_past_the_bound_on_ops_is_413_naming_the_bound(api: Api) -> None:
    for path in ("/v1/jobs?dry_run=true", "/v1/jobs"):
        answer = await api.client.post(path, json=chain(1_500))  # was a 500 RecursionError
        assert answer.status == 413, await answer.text()
        assert answer.content_type == "application/problem+json"
        problem = await answer.json()
        assert problem["errors"][0]["loc"] == "ops"
        assert "job.ops" in problem["detail"]
        assert "1,500 ops" in problem["detail"]


async def test_a_chain_as_long_as_the_bound_allows_plans(api: Api) -> None:
    answer = await api.client.post("/v1/jobs?dry_run=true", json=chain(JOB_OPS.limit))
    assert answer.status == 200, await answer.text()
    assert len((await answer.json())["ops"]) == JOB_OPS.limit


async def test_a_body_past_the_bound_is_413_before_it_is_read(api: Api) -> None:
    body = b" " * (API_BODY_BYTES.limit + 1)
    for path in ("/v1/jobs?dry_run=true", "/v1/jobs", "/v1/resources"):
        answer = await api.client.post(path, data=body)
        assert answer.status == 413, await answer.text()
        assert answer.content_type == "application/problem+json"
        assert "api.body_bytes" in (await answer.json())["detail"]


async def test_a_body_without_a_length_is_refused_once_it_passes_the_bound(api: Api) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b" " * 65536

    answer = await api.client.post("/v1/jobs?dry_run=true", data=endless())
    assert answer.status == 413, await answer.text()
    assert "api.body_bytes" in (await answer.json())["detail"]


async def test_the_api_answers_while_a_big_job_is_still_coming(api: Api) -> None:
    body = json.dumps(ops_job(JOB_OPS.limit)).encode()
    half = len(body) // 2
    first_sent, rest = asyncio.Event(), asyncio.Event()

    async def held() -> AsyncIterator[bytes]:
        yield body[:half]
        first_sent.set()
        await rest.wait()
        yield body[half:]

    submit = asyncio.ensure_future(api.client.post("/v1/jobs?dry_run=true", data=held()))
    await first_sent.wait()
    health = await api.client.get("/healthz")
    assert health.status == 200
    assert not submit.done()
    rest.set()
    answer = await submit
    assert answer.status == 200, await answer.text()
    assert len((await answer.json())["ops"]) == JOB_OPS.limit
