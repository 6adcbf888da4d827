"""One op of a job, from start to end: prepare it (`prepare`), run its container with the
cached views mounted read-only (`container`), follow it through its restarts and health checks
(`supervise`), keep its output and results (`capture`), and, whatever ends it, record how and
release what it held. The op's record changes only through its `OpRecorder`, told by this
run (and by the job, for an op that never ran): the parts above return what they found, or
report it as it comes, and the run records it.

    queued → preparing → running → completed | failed | stopped

A failed preparation (missing image, missing resource, no GPU) fails the op with the reason;
so does a service whose health checks did not pass within `jobs.ready_timeout`. Results are
read from the output whenever the container has run, a stopped op's too (as Nosana's node
does).
While the op holds its container, its leases keep every entry it mounted from eviction. An
op that is cancelled because the job is stopped stops its container; one cancelled because
the daemon itself is stopping leaves the container running, to be re-attached on restart.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

from ..errors import JobError, NosanaCacheError
from ..logs import get_logger
from .capture import LogCapture, extract_results
from .container import container_spec
from .context import OpContext
from .hub_env import bypass_reason
from .models import EndpointRecord, OpRecord, Results
from .names import op_key, volume_name
from .prepare import Preparation
from .recorder import OpRecorder
from .spec import RunOp, VolumeOp
from .states import OpState
from .supervise import Reports, Supervision, endpoints_for

log = get_logger(__name__)

_SIGNALS = {int(s): s.name for s in signal.Signals}


class OpFailed(Exception):
    """The op ended in `failed`; the job stops scheduling."""


class OpRun:
    def __init__(self, ctx: OpContext, op: RunOp | VolumeOp, record: OpRecord) -> None:
        self.ctx = ctx
        self.op = op
        self.recorder = OpRecorder(record, ctx.parts.clock, ctx.save)
        self.holder = f"job:{ctx.job_id}/op:{op.id}"
        self.preparation = Preparation(ctx, self.holder)
        parts = ctx.parts
        self.capture = LogCapture(parts.containers, parts.records.output, ctx.job_id, op.id)
        reports = Reports(restarted=self.recorder.restarted, health=self._health)
        self.supervision = (
            Supervision(ctx, op, self.capture, reports) if isinstance(op, RunOp) else None
        )

    @property
    def record(self) -> OpRecord:
        return self.recorder.record

    # -- the whole op -------------------------------------------------------------------------

    async def execute(self) -> None:
        if isinstance(self.op, VolumeOp):
            await self._create_volume(self.op)
            return
        await self._ending_cleanly(self._prepare_and_run(self.op))

    async def reattach(self) -> None:
        """After a daemon restart: follow the container this op left running."""
        assert isinstance(self.op, RunOp)
        await self._ending_cleanly(self._follow_again(self.op))

    async def _prepare_and_run(self, op: RunOp) -> None:
        recorder, preparation = self.recorder, self.preparation
        await recorder.preparing()
        try:
            await preparation.acquire(op)
        finally:
            held = preparation.held()
            await recorder.acquired(held.image, held.resources, held.lease_ids)
        await recorder.prepared()
        await self._run(op)

    async def _follow_again(self, op: RunOp) -> None:
        record, containers = self.record, self.ctx.parts.containers
        container_id = record.container_id
        state = await containers.state(container_id) if container_id else None
        if container_id is None or state is None:
            raise JobError("its container disappeared while the daemon was down")
        if state.get("Status") == "created":
            # The daemon stopped between creating the container and starting it: a wait
            # would answer at once (0, for a container that never ran). Start it now.
            await self._published(op, await containers.start(container_id, gpu=bool(op.args.gpu)))
        elif not record.ports or len(record.endpoints) != len(op.args.ports()):
            # stopped before the ports were recorded
            await self._published(op, await containers.ports(container_id))
        last = await self.ctx.parts.records.output.last_timestamp(self.ctx.job_id, op.id)
        self.capture.start(container_id, after=last)
        started = record.run_started or self.ctx.parts.clock.now()
        await self._supervise(op, container_id, started=started)

    async def _ending_cleanly(self, work: Coroutine[Any, Any, None]) -> None:
        """Run the op's work; whatever ends it, record how, and release what it held.

        Cancelled by a stop: the container is stopped. Cancelled because the daemon stops
        (`detached`): nothing is touched, the next start re-attaches.
        """
        try:
            await work
        except asyncio.CancelledError:
            if not self.ctx.control.detached:
                await asyncio.shield(self._stopped())
            raise
        except NosanaCacheError as exc:
            await self.recorder.ended(OpState.FAILED, error=exc.message)
            raise OpFailed(exc.message) from exc
        finally:
            if not self.ctx.control.detached:
                await asyncio.shield(self._clean_up())

    # -- running ------------------------------------------------------------------------------

    async def _run(self, op: RunOp) -> None:
        recorder, containers = self.recorder, self.ctx.parts.containers
        reason = bypass_reason(op.args.env or {})
        if reason is not None:
            log.info("op.hub_bypassed", job_id=self.ctx.job_id, op=op.id, reason=reason)
        recorder.hub_bypassed(reason)
        try:
            set_up = await self.preparation.set_up(op)
        finally:  # a layer made before a later step failed goes when the op ends
            recorder.writable_layers(self.preparation.writable_layers)
        recorder.warnings(set_up.warnings)
        spec = container_spec(op, set_up.inputs, self.ctx.results_of)
        await recorder.running(spec.name)
        created = await containers.create(spec)
        await recorder.created(created.container_id, created.device_requests)
        await self._published(op, await containers.start(created.container_id, gpu=spec.gpu))
        self.capture.start(created.container_id)
        await self._supervise(op, created.container_id, started=self.ctx.parts.clock.now())

    async def _published(self, op: RunOp, ports: dict[str, str]) -> None:
        """Record where the engine published the op's ports, before any check runs."""
        await self.recorder.published(ports, endpoints_for(op, ports))

    async def _health(
        self, endpoints: list[EndpointRecord], ready_at: float | None, changed: bool
    ) -> None:
        """A round of the op's health checks: recorded; when it changed something, saved and
        the job woken (its dependents may start once the op is ready)."""
        await self.recorder.health(endpoints, ready_at, changed=changed)
        if changed:
            self.ctx.control.changed.set()

    async def _supervise(self, op: RunOp, container_id: str, *, started: float) -> None:
        assert self.supervision is not None
        ended = await self.supervision.until_exit(container_id, started=started, record=self.record)
        failure = ended.not_ready.message if ended.not_ready is not None else None
        await self._finish(op, ended.exit_code, failure=failure)

    async def _finish(self, op: RunOp, exit_code: int | None, failure: str | None = None) -> None:
        await self.capture.join()
        self._observe_durations()
        results = await self._results(op)
        if exit_code == 0 and failure is None:
            await self.recorder.ended(OpState.COMPLETED, exit_code=0, results=results)
            return
        reason = failure or _exit_reason(exit_code)
        await self.recorder.ended(
            OpState.FAILED, exit_code=exit_code, results=results, error=reason
        )
        raise OpFailed(failure or f"op {op.id} {reason}")

    async def _results(self, op: RunOp | VolumeOp) -> Results | None:
        if not isinstance(op, RunOp):
            return None
        return await extract_results(self.ctx.parts.records.output, self.ctx.job_id, op)

    def _observe_durations(self) -> None:
        record, metrics = self.record, self.ctx.parts.metrics
        if record.prepare_started and record.prepare_ended:
            metrics.prepare_seconds.observe(record.prepare_ended - record.prepare_started)
        if record.run_started:
            metrics.run_seconds.observe(self.ctx.parts.clock.now() - record.run_started)

    async def _create_volume(self, op: VolumeOp) -> None:
        await self.recorder.running()
        try:
            await self.ctx.parts.containers.create_volume(
                volume_name(self.ctx.job_id, op.args.name), self.ctx.job_id
            )
        except NosanaCacheError as exc:
            await self.recorder.ended(OpState.FAILED, error=exc.message)
            raise OpFailed(exc.message) from exc
        await self.recorder.ended(OpState.COMPLETED, exit_code=0)

    # -- ending -------------------------------------------------------------------------------

    async def _stopped(self) -> None:
        control = self.ctx.control
        log.info("op.stopping", job_id=self.ctx.job_id, op=self.op.id, detached=control.detached)
        container_id = self.record.container_id
        results = None
        if container_id and self.record.state == OpState.RUNNING:
            await self.ctx.parts.containers.stop(container_id)
            await self.capture.join()
            results = await self._results(self.op)
        if not self.record.final:
            await self.recorder.stopped(control.stop_reason, results)

    async def _clean_up(self) -> None:
        parts, record = self.ctx.parts, self.record
        if record.container_id:
            await parts.containers.remove(record.container_id)
        for name in record.writable_layers:
            await parts.containers.remove_volume(name)
        await parts.cache.store.remove_op_scratch(self.ctx.job_id, op_key(self.op.id))
        for lease_id in record.lease_ids:
            await parts.cache.store.release_id(lease_id)
        image_lease = self.preparation.image_lease
        if self.preparation.private_image and image_lease is not None:
            try:
                await parts.images.remove(image_lease.entry)
            except NosanaCacheError as exc:  # the engine is away: it goes when its entry expires
                log.warning("op.private_image_kept", op=self.op.id, error=exc.message)


def _exit_reason(exit_code: int | None) -> str:
    """ "exited with code N", naming the signal when the code says the container was killed by
    one (128 + N, as shells and Docker report it): 137 means SIGKILL, which job authors meet as
    running out of memory, a stop that ran out of time, or an engine that stopped, and would
    otherwise have to decode."""
    if exit_code is None:
        return "ended without an exit code"
    reason = f"exited with code {exit_code}"
    if exit_code <= 128 or exit_code - 128 not in _SIGNALS:
        return reason
    return f"{reason} (killed by {_SIGNALS[exit_code - 128]})"
