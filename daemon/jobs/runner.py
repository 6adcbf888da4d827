"""Jobs: ops in order (groups one after another, `depends_on` edges), each prepared from the
cache and run in Docker; the first failure stops the rest.

A job's record is saved at every change, so `GET /v1/jobs/{id}` always tells where it is and a
restarted daemon picks its jobs up again: ops whose container still runs are re-attached,
ops that were preparing prepare again, and ops that had not started start. Stopping the daemon
does not stop jobs (a systemd restart must never kill them); `POST /v1/jobs/{id}/stop` does.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ..aiotasks import TaskSet
from ..cache import Cache
from ..engine.client import Engine
from ..engine.containers import Containers
from ..engine.images import Images
from ..errors import Conflict, EngineUnavailable, InvalidInput, NotFound
from ..logs import get_logger
from ..metrics import Metrics
from ..settings import Settings
from .ops import OpFailed, OpRun, volume_name
from .records import JobRecords
from .spec import JobDefinition, RunOp, parse_job, predecessors
from .states import FINAL, JobState, OpState

log = get_logger(__name__)

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Runner:
    def __init__(
        self,
        settings: Settings,
        records: JobRecords,
        cache: Cache,
        images: Images,
        engine: Engine,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.records = records
        self.cache = cache
        self.images = images
        self.engine = engine
        self.containers = Containers(engine)
        self._runs: dict[str, JobRun] = {}
        self._tasks = TaskSet("jobs")

    async def submit(self, definition: Any, job_id: str | None = None) -> dict[str, Any]:
        """Validate, record and start a job; its record as it is now (queued)."""
        job = parse_job(definition)
        if job_id is None:
            job_id = secrets.token_hex(8)
        elif not _JOB_ID.match(job_id):
            raise InvalidInput(f"{job_id!r} is not a job id (letters, digits, _ and -)")
        if await self.records.exists(job_id):
            raise Conflict(f"a job {job_id} exists already")
        record = _new_record(job_id, definition, job)
        await self.records.save(record)
        self._start(job_id, job, record, recovering=False)
        log.info("job.submitted", job_id=job_id, ops=len(job.ops))
        return record

    def _start(
        self, job_id: str, job: JobDefinition, record: dict[str, Any], recovering: bool
    ) -> None:
        run = JobRun(self, job_id, job, record)
        self._runs[job_id] = run
        run.task = self._tasks.spawn(run.execute(recovering), f"job:{job_id}")
        run.task.add_done_callback(lambda _t: self._runs.pop(job_id, None))

    async def wait(self, job_id: str) -> dict[str, Any]:
        """The job's record once it has ended (at once if it has)."""
        run = self._runs.get(job_id)
        if run is not None and run.task is not None:
            await asyncio.wait([run.task])
        return await self.records.get(job_id)

    async def stop(self, job_id: str) -> dict[str, Any]:
        run = self._runs.get(job_id)
        if run is None:
            record = await self.records.get(job_id)
            if record["state"] in FINAL:
                raise Conflict(f"job {job_id} has already ended ({record['state']})")
            raise NotFound(f"job {job_id} is not running here")
        await run.stop("stopped on request")
        return await self.records.get(job_id)

    async def recover(
        self, release_leases: Callable[[Callable[[str], bool]], Awaitable[int]]
    ) -> int:
        """Pick up jobs a previous run left unfinished.

        Leases survive in the store's index; those of ops whose container still runs are
        kept (the op is re-attached and releases them when it ends), every other one is
        dropped before anything starts again (an op that was preparing prepares anew).
        """
        pending = []
        for record in await self.records.all(states=[s for s in JobState if s not in FINAL]):
            try:
                pending.append((record, parse_job(record["definition"])))
            except InvalidInput as exc:
                error = f"cannot resume: {exc.message}"
                record |= {"state": JobState.FAILED, "error": error, "ended": time.time()}
                await self.records.save(record)
        keep = {
            f"job:{record['id']}/op:{op['id']}"
            for record, _job in pending
            for op in record["ops"]
            if op["state"] == OpState.RUNNING and op.get("container_id")
        }
        await release_leases(lambda holder: holder in keep)
        try:  # before anything starts again: what is not kept now is a leftover
            await self.containers.reap(lambda job_id, op_id: f"job:{job_id}/op:{op_id}" in keep)
        except EngineUnavailable:
            log.warning("job.reap_skipped", reason="the Docker engine is not reachable")
        for record, job in pending:
            self._start(record["id"], job, record, recovering=True)
            log.info("job.resumed", job_id=record["id"])
        return len(pending)

    async def reap_orphans(self) -> None:
        """Containers of ours that no live job owns go (run with every sweep)."""
        try:
            await self.containers.reap(lambda job_id, _op_id: job_id in self._runs)
        except EngineUnavailable:
            return  # nothing can be removed while the engine is away: next time

    async def close(self) -> None:
        """The daemon stops: jobs are left running, to be re-attached at the next start."""
        for run in list(self._runs.values()):
            run.detached = True
        await self._tasks.close(timeout=10)


class JobRun:
    def __init__(
        self, runner: Runner, job_id: str, job: JobDefinition, record: dict[str, Any]
    ) -> None:
        self.runner = runner
        self.job_id = job_id
        self.job = job
        self.record = record
        self.detached = False
        self.stop_reason: str | None = None
        self.task: asyncio.Task[None] | None = None
        self._save_lock = asyncio.Lock()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    settings = property(lambda self: self.runner.settings)
    records = property(lambda self: self.runner.records)
    cache = property(lambda self: self.runner.cache)
    images = property(lambda self: self.runner.images)
    engine = property(lambda self: self.runner.engine)
    containers = property(lambda self: self.runner.containers)

    def op_record(self, op_id: str) -> dict[str, Any]:
        return next(o for o in self.record["ops"] if o["id"] == op_id)

    def results_of(self, op_id: str) -> dict[str, list[str]]:
        results: dict[str, list[str]] = self.op_record(op_id).get("results") or {}
        return results

    async def save(self) -> None:
        self.record["state"] = _job_state(self.record)
        async with self._save_lock:
            await self.records.save(self.record)

    async def execute(self, recovering: bool) -> None:
        structlog.contextvars.bind_contextvars(job_id=self.job_id)
        waits = predecessors(self.job)
        ops = {op.id: op for op in self.job.ops}
        if self.record.get("started") is None:
            self.record["started"] = time.time()
        failure: str | None = None
        try:
            failure = await self._schedule(ops, waits, recovering)
        except asyncio.CancelledError:
            if self.detached:
                raise
            failure = None
        if self.detached:
            return
        await self._finish(failure)

    async def _schedule(
        self, ops: dict[str, Any], waits: dict[str, set[str]], recovering: bool
    ) -> str | None:
        runs: dict[asyncio.Task[None], str] = {}
        for op_id, op in ops.items():
            record = self.op_record(op_id)
            if not recovering or record["state"] not in (OpState.PREPARING, OpState.RUNNING):
                continue
            if (
                isinstance(op, RunOp)
                and record["state"] == OpState.RUNNING
                and record.get("container_id")
            ):
                runs[asyncio.ensure_future(OpRun(self, op, record).reattach())] = op_id
            else:
                record["state"] = OpState.QUEUED  # prepare (or create the volume) again
        failure: str | None = None
        while failure is None and self.stop_reason is None:
            done = {
                o
                for o, r in ((o, self.op_record(o)) for o in ops)
                if r["state"] == OpState.COMPLETED
            }
            active = set(runs.values())
            for op_id, op in ops.items():
                record = self.op_record(op_id)
                if (
                    record["state"] == OpState.QUEUED
                    and op_id not in active
                    and waits[op_id] <= done
                ):
                    runs[asyncio.ensure_future(OpRun(self, op, record).execute())] = op_id
            if not runs:
                break
            self._tasks = {runs[t]: t for t in runs}
            finished, _pending = await asyncio.wait(list(runs), return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                op_id = runs.pop(task)
                if task.cancelled():
                    continue
                exc = task.exception()
                if isinstance(exc, OpFailed):
                    failure = str(exc)
                elif exc is not None:
                    failure = f"op {op_id}: {type(exc).__name__}: {exc}"
                    log.error("job.op_crashed", job_id=self.job_id, op=op_id, exc_info=exc)
        if runs:  # a failure: stop what is still running
            self.stop_reason = f"stopped: {failure}"
            await _cancel(runs)
        return failure

    async def stop(self, reason: str) -> None:
        self.stop_reason = reason
        for task in list(self._tasks.values()):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=30)

    async def _finish(self, failure: str | None) -> None:
        for op in self.record["ops"]:
            if op["state"] not in FINAL:
                reason = f"not started: {failure}" if failure else (self.stop_reason or "stopped")
                op |= {"state": OpState.STOPPED, "error": reason}
        for op in self.job.ops:
            if op.type == "container/create-volume":
                await self.containers.remove_volume(volume_name(self.job_id, op.args.name))
        self.record["ended"] = time.time()
        if failure:
            self.record["error"] = failure
        elif self.stop_reason:
            self.record["error"] = self.stop_reason
        await self.save()
        log.info(
            "job.ended",
            job_id=self.job_id,
            state=self.record["state"],
            error=self.record.get("error"),
        )


async def _cancel(runs: dict[asyncio.Task[None], str]) -> None:
    for task in runs:
        task.cancel()
    await asyncio.wait(list(runs), timeout=30)


def _job_state(record: dict[str, Any]) -> JobState:
    """A job's state from its ops': the first failure decides; running beats preparing."""
    states = [op["state"] for op in record["ops"]]
    if record.get("ended"):
        if OpState.FAILED in states:
            return JobState.FAILED
        if all(s == OpState.COMPLETED for s in states):
            return JobState.COMPLETED
        return JobState.STOPPED
    if OpState.RUNNING in states:
        return JobState.RUNNING
    if OpState.PREPARING in states:
        return JobState.PREPARING
    if any(s in FINAL for s in states):
        return JobState.RUNNING  # between ops
    return JobState.QUEUED


def _new_record(job_id: str, definition: Any, job: JobDefinition) -> dict[str, Any]:
    return {
        "id": job_id,
        "state": JobState.QUEUED,
        "created": time.time(),
        "started": None,
        "ended": None,
        "error": None,
        "definition": definition,
        "ops": [
            {
                "id": op.id,
                "type": op.type,
                "group": op.execution.group if op.execution else None,
                "state": OpState.QUEUED,
                "exit_code": None,
                "error": None,
            }
            for op in job.ops
        ],
    }
