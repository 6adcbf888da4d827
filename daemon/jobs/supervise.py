"""An op's container between its start and its end: its exposed ports and their health, and
the engine's restarts under its `restart_policy`.

Health checks (`health`) run beside the wait for the container's exit; if the op is not ready
within `jobs.ready_timeout`, its container is stopped and the op fails (`NotReady`). What
supervision sees (restarts, health) it reports to the op's run (`Reports`), which records it. A
container that its restart policy restarts is followed through every run: the engine ends a
log stream when its container exits, so the log pumps are attached again once it runs again,
from the last line written, and the op ends only when the engine gives up restarting it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..logs import get_logger
from .capture import LogCapture
from .context import OpContext
from .health import HealthWatch, NotReady, Report, endpoint_records
from .models import EndpointRecord, OpRecord
from .ports import HealthCheck
from .probes import prober
from .spec import RunOp

log = get_logger(__name__)

RESTART_POLL = 0.1
"""How often a container that the engine is restarting is looked at until it runs again."""


def endpoints_for(op: RunOp, published: dict[str, str]) -> list[EndpointRecord]:
    """The records of the op's exposed ports, each with where the engine published it."""
    records = endpoint_records(
        {p.port: (p.type or "none", list(p.health_checks or [])) for p in op.args.ports()}
    )
    for record in records:
        record.address = published.get(f"{record.port}/tcp")
    return records


@dataclass(frozen=True)
class Exit:
    """How the op's container ended: its last exit code, and why the op fails although the
    container may have exited 0 (its checks did not pass in time: the container was stopped)."""

    exit_code: int | None
    not_ready: NotReady | None = None


@dataclass(frozen=True)
class Reports:
    """Where supervision tells the op's run what it sees, as it sees it (the run records it)."""

    restarted: Callable[[int], Awaitable[None]]
    """The engine restarted the container: how often, in all."""
    health: Report
    """A round of health checks (`health.HealthWatch`)."""


class Supervision:
    def __init__(self, ctx: OpContext, op: RunOp, capture: LogCapture, reports: Reports) -> None:
        self.ctx = ctx
        self.op = op
        self.capture = capture
        self.reports = reports
        self._restarts = 0

    async def until_exit(self, container_id: str, *, started: float, record: OpRecord) -> Exit:
        """How the container ended: its last exit code, with `not_ready` (the container
        stopped) if the op's checks had not all passed `jobs.ready_timeout` after `started`.
        `record` is read, never written: where the op stands (its ports as published, its
        readiness and restarts so far, after a daemon restart too)."""
        self._restarts = record.restarts
        waiting = asyncio.ensure_future(self._through_restarts(container_id))
        watching = asyncio.ensure_future(self._watch(started, record)) if record.endpoints else None
        try:
            if watching is not None:
                await asyncio.wait([waiting, watching], return_when=asyncio.FIRST_COMPLETED)
                failure = _failure(watching)
                if failure is not None:
                    await self.ctx.parts.containers.stop(container_id)
                    return Exit(await waiting, failure)
            return Exit(await waiting)
        finally:
            for task in (waiting, watching):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _watch(self, started: float, record: OpRecord) -> None:
        checks: dict[int, list[HealthCheck]] = {
            p.port: list(p.health_checks or []) for p in self.op.args.ports()
        }
        parts = self.ctx.parts
        async with prober() as probe:
            watch = HealthWatch(
                record.endpoints,
                record.ready_at,
                checks,
                probe,
                parts.clock,
                parts.jobs,
                self.reports.health,
                self.op.id,
            )
            await watch.run(started)

    async def _through_restarts(self, container_id: str) -> int:
        containers = self.ctx.parts.containers
        while True:
            exit_code = await containers.wait(container_id)
            state = await containers.run_state(container_id)
            if state is None or state.ended:
                if state is not None and state.restarts != self._restarts:
                    # Restarted between two looks (a wait on a restarting container answers
                    # at its next exit): read what those runs wrote.
                    await self._restarted_to(state.restarts)
                    await self._attach_again(container_id)
                return exit_code
            await self._restarted_to(state.restarts)
            log.info("op.restarting", op=self.op.id, exit_code=exit_code, restarts=state.restarts)
            await self._restarted(container_id)
            await self._attach_again(container_id)

    async def _restarted_to(self, restarts: int) -> None:
        self._restarts = restarts
        await self.reports.restarted(restarts)

    async def _attach_again(self, container_id: str) -> None:
        """Follow the container's new run from the last line written; or, if it has ended
        already, read what it wrote. The engine ends a log stream when its run ends."""
        await self.capture.join()
        output = self.ctx.parts.records.output
        after = await output.last_timestamp(self.ctx.job_id, self.op.id)
        self.capture.start(container_id, after=after)

    async def _restarted(self, container_id: str) -> None:
        """Wait while the engine restarts the container (it runs again, or it has ended)."""
        while True:
            state = await self.ctx.parts.containers.run_state(container_id)
            if state is None or not state.restarting:
                return
            await asyncio.sleep(RESTART_POLL)


def _failure(task: asyncio.Task[None]) -> NotReady | None:
    """Why the health watch ended the op, if it did. A watch that crashed is logged and the op
    runs on, its health no longer known: a fault of the daemon's is not the job's."""
    if not task.done() or task.cancelled():
        return None
    exc = task.exception()
    if exc is not None and not isinstance(exc, NotReady):
        log.error("op.health_watch_crashed", exc_info=exc)
        return None
    return exc
