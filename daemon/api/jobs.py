"""Jobs: submit a Nosana job definition, follow it, read its logs, stop it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import InvalidInput, NotFound
from ..jobs.records import JobRecords
from ..jobs.states import JobState
from ..jobs.tail import LogTail
from .context import context_of
from .models import Job, JobList, JobPlan, respond
from .shapes import flag, read_json

routes = web.RouteTableDef()

_STATES = {s.value for s in JobState}
_FOLLOW_POLL = 0.2
"""How often a followed op's files are checked for new lines (only new bytes are read)."""


@routes.post("/v1/jobs")
async def submit(request: web.Request) -> web.Response:
    """Validate and start a job; 201 with its record. `?id=` names it (default: random);
    `?wait=true` answers when the job has ended. `?dry_run=true` validates and answers 200
    with what running it would take, changing nothing."""
    runner = context_of(request).runner
    if flag(request, "dry_run"):
        return respond(JobPlan.of(await runner.plan(await read_json(request))))
    wait = flag(request, "wait")  # a bad flag is refused before anything starts
    record = await runner.submit(await read_json(request), job_id=request.query.get("id"))
    if wait:
        record = await runner.wait(record.id)
    return respond(Job.of(record), status=201)


@routes.get("/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    states = [s for value in request.query.getall("state", []) for s in value.split(",") if s]
    unknown = set(states) - _STATES
    if unknown:
        raise InvalidInput(f"unknown state {sorted(unknown)[0]!r}; one of {sorted(_STATES)}")
    records = await context_of(request).runner.records.all([JobState(s) for s in states])
    return respond(JobList.of(records))


@routes.get("/v1/jobs/{id}")
async def show_job(request: web.Request) -> web.Response:
    record = await context_of(request).runner.records.get(request.match_info["id"])
    return respond(Job.of(record))


@routes.post("/v1/jobs/{id}/stop")
async def stop_job(request: web.Request) -> web.Response:
    record = await context_of(request).runner.stop(request.match_info["id"])
    return respond(Job.of(record))


@routes.get("/v1/jobs/{id}/logs")
async def job_logs(request: web.Request) -> web.StreamResponse:
    """An op's output as text (`?op=`; all ops, prefixed, without it); `?stream=stdout|stderr`
    picks one; `?follow=true` keeps the response open until the op ends."""
    records = context_of(request).runner.records
    job_id = request.match_info["id"]
    record = await records.get(job_id)
    op_ids = [op.id for op in record.ops]
    wanted = request.query.get("op")
    if wanted is not None and wanted not in op_ids:
        raise NotFound(f"job {job_id} has no op {wanted!r}")
    streams = _streams(request.query.get("stream"))
    ops = [wanted] if wanted is not None else op_ids  # an op id may be the empty string
    follow = flag(request, "follow")
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    for op_id in ops:
        await _send_output(
            response,
            records.output.tail(job_id, op_id, streams),
            prefix=f"[{op_id}] " if len(ops) > 1 else "",
            ended=_op_ended(records, job_id, op_id) if follow else None,
        )
    await response.write_eof()
    return response


async def _send_output(
    response: web.StreamResponse,
    tail: LogTail,
    prefix: str,
    ended: Callable[[], Awaitable[bool]] | None,
) -> None:
    """Send what the op has written; with `ended`, keep sending what it appends until `ended`
    says it is over, then what it wrote before that."""
    while True:
        over = ended is None or await ended()
        while True:
            lines = await tail.read(to_end=over)
            if lines:
                await response.write("".join(f"{prefix}{line.text}\n" for line in lines).encode())
            if tail.caught_up:
                break
        if over:
            return
        await asyncio.sleep(_FOLLOW_POLL)


def _op_ended(records: JobRecords, job_id: str, op_id: str) -> Callable[[], Awaitable[bool]]:
    async def ended() -> bool:
        return (await records.get(job_id)).op(op_id).final

    return ended


def _streams(value: str | None) -> tuple[str, ...]:
    if value in (None, "all"):
        return ("stdout", "stderr")
    if value not in ("stdout", "stderr"):
        raise InvalidInput("stream is stdout, stderr or all")
    return (value,)
