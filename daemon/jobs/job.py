"""One job's run: its ops in order (groups one after another, `depends_on` edges, a service's
dependents once it is ready), each prepared and run by `ops`; the first failure stops the
rest, and the job's end is recorded with what it made removed (volumes, its network).

This module is the one writer of a job's record (`JobRecord`): its first version
(`new_record`), a job that cannot be resumed (`cannot_resume`), and, while it runs, its
start, state and end. An op's own record, made here with the job's first one, is then written
only by its recorder (`recorder`): told by the op's run, and from here only for ops that have
no run (stopped before their turn, or preparing anew after a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from ..logs import get_logger
from .context import Components, JobControl, OpContext
from .ignored import job_not_acted_on, op_not_acted_on
from .models import JobRecord, OpRecord, Results
from .names import volume_name
from .ops import OpFailed, OpRun
from .recorder import OpRecorder
from .spec import JobDefinition, RunOp, VolumeOp, is_service, needs_network, order
from .states import JobState, OpState

log = get_logger(__name__)


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

    async def _network(self) -> str:
        """The job's network, made with its first container and looked for again before each
        next one (it is looked up, not remembered: an engine that lost it, or an operator
        who pruned it between two ops, must not fail the next). A job of one container, no
        `aliases`, joins the shared network instead, which spares it the set-up and the
        engine's limited address pools."""
        async with self._network_lock:  # ops of a group start together: made once
            if not needs_network(self.job):
                return await self.parts.networks.shared()
            return await self.parts.networks.ensure(self.job_id)

    async def save(self) -> None:
        self.record.state = self.record.derive_state()
        async with self._save_lock:
            await self.parts.records.save(self.record)

    async def execute(self, recovering: bool) -> None:
        structlog.contextvars.bind_contextvars(job_id=self.job_id)
        if self.record.started is None:
            self.record.started = self.parts.clock.now()
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
                self._recorder(record).requeued()
        return runs

    def _op(self, op: RunOp | VolumeOp, record: OpRecord) -> OpRun:
        return OpRun(self._ctx, op, record)

    def _recorder(self, record: OpRecord) -> OpRecorder:
        """The recorder of an op that has no run."""
        return OpRecorder(record, self.parts.clock, self.save)

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
                self._recorder(op).never_ran(reason)
        for op_def in self.job.ops:
            if isinstance(op_def, VolumeOp):
                await self.parts.containers.remove_volume(
                    volume_name(self.job_id, op_def.args.name)
                )
        if needs_network(self.job):
            await self.parts.networks.remove(self.job_id)
        self.record.ended = self.parts.clock.now()
        if failure:
            self.record.error = failure
        elif self.control.stop_reason:
            self.record.error = self.control.stop_reason
        await self.save()
        log.info("job.ended", job_id=self.job_id, state=self.record.state, error=self.record.error)


def new_record(job_id: str, definition: Any, job: JobDefinition, now: float) -> JobRecord:
    """A job's first record, its ops' too: every field that records have always had, given
    explicitly so that it is saved (see `models`); what the daemon will not do, said from the
    start."""
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
        created=now,
        started=None,
        ended=None,
        error=None,
        definition=definition,
        ops=ops,
    )
    if ignored := job_not_acted_on(job):
        record.not_acted_on = ignored
    return record


def cannot_resume(record: JobRecord, reason: str, now: float) -> None:
    """A job the last run left unfinished whose definition no longer reads: it fails."""
    record.state, record.ended = JobState.FAILED, now
    record.error = f"cannot resume: {reason}"


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
