"""Jobs: ops in order (groups one after another, `depends_on` edges), each prepared from the
cache and run in Docker; the first failure stops the rest.

A job's record is saved at every change, so `GET /v1/jobs/{id}` always tells where it is and a
restarted daemon picks its jobs up again: ops whose container still runs are re-attached,
ops that were preparing prepare again, and ops that had not started start. Stopping the daemon
does not stop jobs (a systemd restart must never kill them); `POST /v1/jobs/{id}/stop` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ..aiotasks import TaskSet
from ..cache import Cache
from ..clock import Clock, SystemClock
from ..engine.client import Engine
from ..engine.containers import Containers
from ..engine.images import Images
from ..engine.networks import Networks
from ..errors import Conflict, EngineUnavailable, InvalidInput, NotFound
from ..logs import get_logger
from ..metrics import Metrics
from ..settings import Settings
from .context import Components, HubAddress, JobControl, OpContext
from .ignored import job_not_acted_on, op_not_acted_on
from .models import JobRecord, OpRecord, Results
from .names import volume_name
from .ops import OpFailed, OpRun
from .records import JobRecords
from .spec import JobDefinition, RunOp, VolumeOp, is_service, needs_network, order, parse_job
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
        hub: HubAddress | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.records = records
        self.parts = Components(
            settings=settings,
            records=records,
            cache=cache,
            images=images,
            engine=engine,
            containers=Containers(engine, owner_of(settings)),
            networks=Networks(engine, owner_of(settings)),
            metrics=metrics or Metrics(),
            clock=clock or SystemClock(),
            hub=hub,
        )
        self._runs: dict[str, JobRun] = {}
        self._tasks = TaskSet("jobs")

    async def submit(self, definition: Any, job_id: str | None = None) -> JobRecord:
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
        self._start(job, record, recovering=False)
        log.info("job.submitted", job_id=job_id, ops=len(job.ops))
        return record

    def _start(self, job: JobDefinition, record: JobRecord, recovering: bool) -> None:
        job_id = record.id
        run = JobRun(self.parts, job, record)
        self._runs[job_id] = run
        run.task = self._tasks.spawn(run.execute(recovering), f"job:{job_id}")
        run.task.add_done_callback(lambda _t: self._runs.pop(job_id, None))

    async def wait(self, job_id: str) -> JobRecord:
        """The job's record once it has ended (at once if it has)."""
        run = self._runs.get(job_id)
        if run is not None and run.task is not None:
            await asyncio.wait([run.task])
        return await self.records.get(job_id)

    async def stop(self, job_id: str) -> JobRecord:
        run = self._runs.get(job_id)
        if run is None:
            record = await self.records.get(job_id)
            if record.final:
                raise Conflict(f"job {job_id} has already ended ({record.state})")
            raise NotFound(f"job {job_id} is not running here")
        await run.stop("stopped on request")
        if run.task is not None:  # its end recorded (ops stopped, network gone), not only begun
            await asyncio.wait([run.task], timeout=30)
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
                pending.append((record, parse_job(record.definition)))
            except InvalidInput as exc:
                record.state, record.ended = JobState.FAILED, time.time()
                record.error = f"cannot resume: {exc.message}"
                await self.records.save(record)
        keep = {
            f"job:{record.id}/op:{op.id}"
            for record, _job in pending
            for op in record.ops
            if op.state == OpState.RUNNING and op.container_id
        }
        await release_leases(lambda holder: holder in keep)
        pending_ids = {record.id for record, _job in pending}
        try:  # before anything starts again: what is not kept now is a leftover
            await self.parts.containers.reap(
                lambda job_id, op_id: f"job:{job_id}/op:{op_id}" in keep
            )
            await self.parts.networks.reap(lambda job_id: job_id in pending_ids)
        except EngineUnavailable:
            log.warning("job.reap_skipped", reason="the Docker engine is not reachable")
        for record, job in pending:
            self._start(job, record, recovering=True)
            log.info("job.resumed", job_id=record.id)
        return len(pending)

    async def reap_orphans(self) -> None:
        """Containers of ours that no live job owns go (run with every sweep)."""
        try:
            await self.parts.containers.reap(lambda job_id, _op_id: job_id in self._runs)
            await self.parts.networks.reap(lambda job_id: job_id in self._runs)
        except EngineUnavailable:
            return  # nothing can be removed while the engine is away: next time

    async def close(self) -> None:
        """The daemon stops: jobs are left running, to be re-attached at the next start."""
        for run in list(self._runs.values()):
            run.control.detached = True
        await self._tasks.close(timeout=10)


class JobRun:
    """One job's ops in order: each op started once its group's turn has come and its
    `depends_on` have completed; the first failure stops the rest."""

    def __init__(self, parts: Components, job: JobDefinition, record: JobRecord) -> None:
        self.parts = parts
        self.job_id = record.id
        self.job = job
        self.record = record
        self.control = JobControl()
        self.task: asyncio.Task[None] | None = None
        self._ctx = OpContext(
            parts, record.id, self.control, self._results_of, self.save, self._network
        )
        self._save_lock = asyncio.Lock()
        self._network_lock = asyncio.Lock()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def _results_of(self, op_id: str) -> Results | None:
        return next((op.results for op in self.record.ops if op.id == op_id), None)

    async def _network(self) -> str | None:
        """The job's network, made with its first container and looked for again before each
        next one (it is looked up, not remembered: an engine that lost it, or an operator
        who pruned it between two ops, must not fail the next); None for a job whose ops
        need none: one container, no `aliases` (the engine's default bridge, as before,
        spares a one-op job the network set-up and the engine's limited address pools)."""
        if not needs_network(self.job):
            return None
        async with self._network_lock:  # ops of a group start together: made once
            return await self.parts.networks.ensure(self.job_id)

    async def save(self) -> None:
        self.record.state = self.record.derive_state()
        async with self._save_lock:
            await self.parts.records.save(self.record)

    async def execute(self, recovering: bool) -> None:
        structlog.contextvars.bind_contextvars(job_id=self.job_id)
        if self.record.started is None:
            self.record.started = time.time()
        failure: str | None = None
        try:
            failure = await self._schedule(recovering)
        except asyncio.CancelledError:
            if self.control.detached:
                raise
            failure = None
        if self.control.detached:
            return
        await self._finish(failure)

    def _resume(self, ops: dict[str, RunOp | VolumeOp]) -> dict[asyncio.Task[None], str]:
        """After a restart: ops whose container still runs are followed again; ops that were
        preparing (or creating a volume) start over."""
        runs: dict[asyncio.Task[None], str] = {}
        for op_id, op in ops.items():
            record = self.record.op(op_id)
            if record.state not in (OpState.PREPARING, OpState.RUNNING):
                continue
            if isinstance(op, RunOp) and record.state == OpState.RUNNING and record.container_id:
                runs[asyncio.ensure_future(self._op(op, record).reattach())] = op_id
            else:
                record.state = OpState.QUEUED
        return runs

    def _op(self, op: RunOp | VolumeOp, record: OpRecord) -> OpRun:
        return OpRun(self._ctx, op, record)

    async def _schedule(self, recovering: bool) -> str | None:
        """Start every op whose turn has come, until all have ended or one failed; the
        failure, if any."""
        waits = order(self.job)
        ops = {op.id: op for op in self.job.ops}
        runs = self._resume(ops) if recovering else {}
        failure: str | None = None
        while failure is None and self.control.stop_reason is None:
            self.control.changed.clear()  # what follows sees every change made before
            completed, ready = self._progress(ops)
            active = set(runs.values())
            for op_id, op in ops.items():
                record = self.record.op(op_id)
                startable = record.state == OpState.QUEUED and op_id not in active
                if startable and waits[op_id].met(completed, ready):
                    runs[asyncio.ensure_future(self._op(op, record).execute())] = op_id
            if not runs:
                break
            self._tasks = {runs[t]: t for t in runs}
            for task in await self._next_change(list(runs)):
                failure = _failure(runs.pop(task), task) or failure
        if runs:  # a failure: stop what is still running
            self.control.stop_reason = f"stopped: {failure}"
            await _cancel(runs)
        return failure

    def _progress(self, ops: dict[str, RunOp | VolumeOp]) -> tuple[set[str], set[str]]:
        """The ops that have completed, and the services that are up (running, ready)."""
        completed = {o.id for o in self.record.ops if o.state == OpState.COMPLETED}
        ready = {
            o.id
            for o in self.record.ops
            if o.state == OpState.RUNNING and o.ready_at is not None and is_service(ops[o.id])
        }
        return completed, ready

    async def _next_change(self, runs: list[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        """Wait until an op ends or becomes ready; the ops' tasks that have ended."""
        waker: asyncio.Future[Any] = asyncio.ensure_future(self.control.changed.wait())
        try:
            await asyncio.wait([*runs, waker], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waker
        return {task for task in runs if task.done()}

    async def stop(self, reason: str) -> None:
        self.control.stop_reason = reason
        for task in list(self._tasks.values()):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=30)

    async def _finish(self, failure: str | None) -> None:
        reason = f"not started: {failure}" if failure else (self.control.stop_reason or "stopped")
        for op in self.record.ops:
            if not op.final:
                op.state, op.error = OpState.STOPPED, reason
        for op_def in self.job.ops:
            if isinstance(op_def, VolumeOp):
                await self.parts.containers.remove_volume(
                    volume_name(self.job_id, op_def.args.name)
                )
        if needs_network(self.job):
            await self.parts.networks.remove(self.job_id)
        self.record.ended = time.time()
        if failure:
            self.record.error = failure
        elif self.control.stop_reason:
            self.record.error = self.control.stop_reason
        await self.save()
        log.info("job.ended", job_id=self.job_id, state=self.record.state, error=self.record.error)


def owner_of(settings: Settings) -> str:
    """How this daemon labels what it makes in the engine: its store's path, digested (two
    daemons cannot share a store)."""
    return hashlib.sha256(str(settings.store.path).encode()).hexdigest()[:16]


def _failure(op_id: str, task: asyncio.Task[None]) -> str | None:
    """Why an op's task ended the job, if it did: a failed op, or a crash (logged)."""
    if task.cancelled():
        return None
    exc = task.exception()
    if isinstance(exc, OpFailed):
        return str(exc)
    if exc is not None:
        log.error("job.op_crashed", op=op_id, exc_info=exc)
        return f"op {op_id}: {type(exc).__name__}: {exc}"
    return None


async def _cancel(runs: dict[asyncio.Task[None], str]) -> None:
    for task in runs:
        task.cancel()
    await asyncio.wait(list(runs), timeout=30)


def _new_record(job_id: str, definition: Any, job: JobDefinition) -> JobRecord:
    """A job's first record: every field that records have always had, given explicitly so
    that it is saved (see `models`); what the daemon will not do, said from the start."""
    ops = [
        OpRecord(
            id=op.id,
            type=op.type,
            group=op.execution.group if op.execution else None,
            state=OpState.QUEUED,
            exit_code=None,
            error=None,
        )
        for op in job.ops
    ]
    for op, op_record in zip(job.ops, ops, strict=True):
        if ignored := op_not_acted_on(op):
            op_record.not_acted_on = ignored
    record = JobRecord(
        id=job_id,
        state=JobState.QUEUED,
        created=time.time(),
        started=None,
        ended=None,
        error=None,
        definition=definition,
        ops=ops,
    )
    if ignored := job_not_acted_on(job):
        record.not_acted_on = ignored
    return record
