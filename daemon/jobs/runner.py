"""Jobs: submitted, run (`job`: ops in order, each prepared from the cache and run in Docker;
the first failure stops the rest), stopped, and picked up again after a restart.

A job's record is saved at every change, so `GET /v1/jobs/{id}` always tells where it is and a
restarted daemon picks its jobs up again: ops whose container still runs are re-attached,
ops that were preparing prepare again, and ops that had not started start. Stopping the daemon
does not stop jobs (a systemd restart must never kill them); `POST /v1/jobs/{id}/stop` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..cache import Cache
from ..engine.client import Engine
from ..engine.containers import Containers
from ..engine.images import Images
from ..engine.networks import Networks
from ..errors import Conflict, EngineUnavailable, InvalidInput, NotFound
from ..fence import Fence
from ..logs import get_logger
from ..metrics import Metrics
from ..settings import GpuPolicy, JobsSettings
from ..util.aiotasks import TaskSet
from ..util.clock import Clock, SystemClock
from .context import Components, HubAddress
from .job import JobRun, cannot_resume, new_record
from .models import JobRecord
from .plan import JobPlan, plan_job
from .records import JobRecords
from .spec import JobDefinition, parse_job
from .states import FINAL, JobState, OpState

log = get_logger(__name__)

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


async def _parse(definition: Any) -> JobDefinition:
    """`parse_job` off the event loop: a job within the bounds takes milliseconds to a second
    to validate, and the API, `/hf` and every download meanwhile keep being served."""
    return await asyncio.to_thread(parse_job, definition)


class Runner:
    def __init__(
        self,
        jobs: JobsSettings,
        gpu: GpuPolicy,
        owner: str,
        records: JobRecords,
        cache: Cache,
        images: Images,
        engine: Engine,
        metrics: Metrics | None = None,
        hub: HubAddress | None = None,
        clock: Clock | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.records = records
        self.fence = fence
        self.parts = Components(
            jobs=jobs,
            gpu=gpu,
            records=records,
            cache=cache,
            images=images,
            engine=engine,
            containers=Containers(engine, owner),
            networks=Networks(engine, owner),
            metrics=metrics or Metrics(),
            clock=clock or SystemClock(),
            hub=hub,
        )
        self._runs: dict[str, JobRun] = {}
        self._tasks = TaskSet("jobs")

    async def submit(self, definition: Any, job_id: str | None = None) -> JobRecord:
        """Validate, record and start a job; its record as it is now (queued)."""
        job = await _parse(definition)
        if self.fence is not None:
            await self.fence.require()
        if job_id is None:
            job_id = secrets.token_hex(8)
        elif not _JOB_ID.match(job_id):
            raise InvalidInput(f"{job_id!r} is not a job id (letters, digits, _ and -)")
        if await self.records.exists(job_id):
            raise Conflict(f"a job {job_id} exists already")
        record = new_record(job_id, definition, job, self.parts.clock.now())
        await self.records.save(record)
        self._start(job, record, recovering=False)
        log.info("job.submitted", job_id=job_id, ops=len(job.ops))
        return record

    async def plan(self, definition: Any) -> JobPlan:
        """What running the job would take, validated as `submit` validates it, changing
        nothing (`plan`)."""
        return await plan_job(self.parts, await _parse(definition))

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
                cannot_resume(record, exc.message, self.parts.clock.now())
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


def owner_of(store_path: Path) -> str:
    """How this daemon labels what it makes in the engine: its store's path, digested (two
    daemons cannot share a store)."""
    return hashlib.sha256(str(store_path).encode()).hexdigest()[:16]
