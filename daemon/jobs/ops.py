"""One op of a job: prepare (image and resources, concurrently, through the store), run the
container with the cached views mounted read-only, collect its logs, exit code and results.

    queued → preparing → running → completed | failed | stopped

A failed preparation (missing image, missing resource, no GPU) fails the op with the reason.
While the op holds its container, its leases keep every entry it mounted from eviction. An
op that is cancelled because the job is stopped stops its container; one cancelled because
the daemon itself is stopping leaves the container running, to be re-attached on restart.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import signal
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..aiotasks import all_or_nothing
from ..engine.containers import Bind, ContainerSpec
from ..engine.images import Credentials
from ..errors import JobError, NosanaCacheError
from ..logs import get_logger
from ..resources import S3Resource
from ..store import Lease
from .output import STREAMS, LogWriter
from .spec import ResultPattern, RunOp, VolumeOp, mount_target
from .states import FINAL, OpState

_SIGNALS = {int(s): s.name for s in signal.Signals}

if TYPE_CHECKING:
    from .runner import JobRun

log = get_logger(__name__)

_PLACEHOLDER = re.compile(r"%%ops\.([A-Za-z0-9_.-]+)\.results\.([A-Za-z0-9_.-]+)%%")


class OpFailed(Exception):
    """The op ended in `failed`; the job stops scheduling."""


def volume_name(job_id: str, name: str) -> str:
    return "nosana-cache-" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{job_id}-{name}")


@dataclass
class OpRun:
    job: JobRun
    op: RunOp | VolumeOp
    record: dict[str, Any]
    leases: dict[int, Lease] = field(default_factory=dict)
    """Resource leases by the resource's index in the op (they arrive in any order)."""
    image_lease: Lease | None = None
    private_image: bool = False
    pumps: list[tuple[threading.Thread, LogWriter]] = field(default_factory=list)

    @property
    def holder(self) -> str:
        return f"job:{self.job.job_id}/op:{self.op.id}"

    async def set(self, **changes: Any) -> None:
        self.record.update(changes)
        await self.job.save()

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
        await self._prepare(op)
        await self._run(op)

    async def _follow_again(self, op: RunOp) -> None:
        container_id = self.record["container_id"]
        if await self.job.containers.state(container_id) is None:
            raise JobError("its container disappeared while the daemon was down")
        last = await self.job.records.output.last_timestamp(self.job.job_id, op.id)
        self._follow_logs(container_id, after=last)
        await self._finish(op, await self.job.containers.wait(container_id))

    async def _ending_cleanly(self, work: Coroutine[Any, Any, None]) -> None:
        """Run the op's work; whatever ends it, record how, and release what it held.

        Cancelled by a stop: the container is stopped. Cancelled because the daemon stops
        (`detached`): nothing is touched, the next start re-attaches.
        """
        try:
            await work
        except asyncio.CancelledError:
            if not self.job.detached:
                await asyncio.shield(self._stopped())
            raise
        except NosanaCacheError as exc:
            await self.set(state=OpState.FAILED, error=exc.message, ended=time.time())
            raise OpFailed(exc.message) from exc
        finally:
            if not self.job.detached:
                await asyncio.shield(self._clean_up())

    # -- preparing ----------------------------------------------------------------------------

    async def _prepare(self, op: RunOp) -> None:
        await self.set(state=OpState.PREPARING, prepare_started=time.time())
        auth = op.args.authentication.docker if op.args.authentication else None
        credentials = Credentials(auth.username, auth.password, auth.server) if auth else None
        self.private_image = credentials is not None
        resources = op.args.resources or []
        records: list[dict[str, Any]] = [
            {"source": None, "target": mount_target(r), "type": r.type} for r in resources
        ]

        async def image() -> None:
            self.image_lease = await self.job.images.acquire(
                op.args.image, credentials, self.holder
            )
            lease = self.image_lease
            self.record["image"] = {
                "ref": op.args.image,
                "entry_id": lease.entry.id,
                "hit": lease.hit,
                "pulled": bool(lease.entry.details.get("pulled_by_daemon")) and not lease.hit,
            }

        async def resource(index: int) -> None:
            lease = await self.job.cache.acquire(resources[index], self.holder)
            self.leases[index] = lease
            records[index] |= {
                "source": lease.entry.source,
                "entry_id": lease.entry.id,
                "hit": lease.hit,
                "bytes_fetched": 0 if lease.hit else lease.entry.size_bytes,
                "path": str(lease.view) if lease.view else None,
            }

        try:
            await all_or_nothing([image(), *(resource(i) for i in range(len(resources)))])
        finally:
            lease_ids = [self.leases[i].lease_id for i in sorted(self.leases)]
            if self.image_lease is not None:
                lease_ids.append(self.image_lease.lease_id)
            await self.set(resources=records, lease_ids=lease_ids)
        await self.set(prepare_ended=time.time())

    # -- running ------------------------------------------------------------------------------

    async def _run(self, op: RunOp) -> None:
        spec = await self._container_spec(op)
        await self.set(state=OpState.RUNNING, run_started=time.time(), container_name=spec.name)
        created = await self.job.containers.create(spec)
        await self.set(container_id=created.container_id, device_requests=created.device_requests)
        ports = await self.job.containers.start(created.container_id, gpu=spec.gpu)
        await self.set(ports=ports)
        self._follow_logs(created.container_id)
        await self._finish(op, await self.job.containers.wait(created.container_id))

    async def _finish(self, op: RunOp, exit_code: int) -> None:
        await asyncio.to_thread(self._join_logs)
        self._observe_durations()
        results = await asyncio.to_thread(self._results, op)
        if exit_code == 0:
            await self.set(state=OpState.COMPLETED, exit_code=0, results=results, ended=time.time())
            return
        reason = self._exit_reason(exit_code)
        await self.set(
            state=OpState.FAILED,
            exit_code=exit_code,
            results=results,
            error=reason,
            ended=time.time(),
        )
        raise OpFailed(f"op {op.id} {reason}")

    @staticmethod
    def _exit_reason(exit_code: int) -> str:
        """ "exited with code N", naming the signal when the code says the container was
        killed by one (128 + N, as shells and Docker report it): 137 means SIGKILL, which job
        authors meet as running out of memory, a stop that ran out of time, or an engine that
        stopped, and would otherwise have to decode."""
        reason = f"exited with code {exit_code}"
        if exit_code <= 128 or exit_code - 128 not in _SIGNALS:
            return reason
        return f"{reason} (killed by {_SIGNALS[exit_code - 128]})"

    def _observe_durations(self) -> None:
        record, metrics = self.record, self.job.runner.metrics
        if record.get("prepare_started") and record.get("prepare_ended"):
            metrics.prepare_seconds.observe(record["prepare_ended"] - record["prepare_started"])
        if record.get("run_started"):
            metrics.run_seconds.observe(time.time() - record["run_started"])

    async def _container_spec(self, op: RunOp) -> ContainerSpec:
        args = op.args
        binds: list[Bind] = []
        volumes: dict[str, str] = {}
        store = self.job.cache.store
        for index, (resource, lease) in enumerate(
            zip(args.resources or [], [self.leases[i] for i in sorted(self.leases)], strict=True)
        ):
            target = _clean_target(mount_target(resource))
            view = store.engine_view_path(lease.entry.id)
            if isinstance(resource, S3Resource) and resource.allowWrite:
                volumes[await self._writable_layer(index, view)] = target
            else:
                binds.append(Bind(str(view), target))
        for mount in args.volumes or []:
            volumes[volume_name(self.job.job_id, mount.name)] = mount.dest
        env = {**(args.env or {}), "NOSANA_ID": self.job.job_id}
        return ContainerSpec(
            name=volume_name(self.job.job_id, op.id).replace("nosana-cache-", "nosana-", 1),
            image=args.image,
            job_id=self.job.job_id,
            op_id=op.id,
            cmd=self._fill(_command(args.cmd)),
            entrypoint=self._fill(_command_list(args.entrypoint)),
            env={k: self._fill_text(v) for k, v in env.items()},
            work_dir=args.work_dir,
            binds=binds,
            volumes=volumes,
            gpu=await self._wants_gpu(op),
            ports=[f"{p.port}/tcp" for p in args.ports() if isinstance(p.port, int)],
        )

    async def _wants_gpu(self, op: RunOp) -> bool:
        if not op.args.gpu:
            return False
        policy = self.job.settings.docker.gpu
        if policy == "all":
            return True
        if policy == "none":
            warning = "gpu: true, but docker.gpu = none: running without a GPU"
            log.warning("op.gpu_skipped", job_id=self.job.job_id, op=op.id)
            self.record.setdefault("warnings", []).append(warning)
            return False
        status = await self.job.engine.status()
        if status.has_gpu:
            return True
        raise JobError(
            f"op {op.id} asks for a GPU (gpu: true) but the Docker engine at {status.host} has "
            "no NVIDIA runtime or CDI GPUs (docker.gpu = auto); install the NVIDIA container "
            "toolkit, or set docker.gpu = none to run such ops without a GPU"
        )

    async def _writable_layer(self, index: int, lower: Path) -> str:
        """A copy-on-write layer over a view (an overlay volume): the job writes, the store
        does not."""
        scratch = self.job.cache.store.op_scratch(self.job.job_id, self.op.id)
        layer = str(index)
        for part in ("upper", "work"):
            (scratch.local / layer / part).mkdir(parents=True, exist_ok=True)
        engine = scratch.engine / layer
        name = volume_name(self.job.job_id, f"{self.op.id}-rw{index}")
        options = f"lowerdir={lower},upperdir={engine / 'upper'},workdir={engine / 'work'}"
        await self.job.containers.create_volume(
            name, self.job.job_id, {"type": "overlay", "device": "overlay", "o": options}
        )
        self.record.setdefault("writable_layers", []).append(name)
        return name

    async def _create_volume(self, op: VolumeOp) -> None:
        await self.set(state=OpState.RUNNING, run_started=time.time())
        try:
            await self.job.containers.create_volume(
                volume_name(self.job.job_id, op.args.name), self.job.job_id
            )
        except NosanaCacheError as exc:
            await self.set(state=OpState.FAILED, error=exc.message, ended=time.time())
            raise OpFailed(exc.message) from exc
        await self.set(state=OpState.COMPLETED, exit_code=0, ended=time.time())

    # -- logs and results ---------------------------------------------------------------------

    def _follow_logs(self, container_id: str, after: str | None = None) -> None:
        """Copy stdout and stderr to the op's log files; after a restart, from `after` on
        (lines at or before that timestamp were already written)."""
        for stream in STREAMS:
            writer = self.job.records.output.writer(self.job.job_id, self.op.id, stream, after)
            thread = self.job.containers.follow_logs(
                container_id, stream, writer.write, since=_seconds(after)
            )
            self.pumps.append((thread, writer))

    def _join_logs(self) -> None:
        for thread, writer in self.pumps:
            thread.join(timeout=10)
            writer.close()
        self.pumps.clear()

    def _results(self, op: RunOp) -> dict[str, list[str]]:
        """Blocking (it reads the op's output): for a worker thread."""
        results: dict[str, list[str]] = {}
        for name, spec in (op.results or {}).items():
            pattern = spec.regex if isinstance(spec, ResultPattern) else spec
            streams = (
                tuple(spec.logType) if isinstance(spec, ResultPattern) else ("stdout", "stderr")
            )
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                results[name] = [f"invalid regex: {exc}"]
                continue
            found = []
            for _stamp, _stream, line in self.job.records.output.lines(
                self.job.job_id, op.id, tuple(s for s in streams if s in ("stdout", "stderr"))
            ):
                for match in regex.finditer(line):
                    found.append(match.group(1) if regex.groups else match.group(0))
            results[name] = found
        return results

    def _fill_text(self, text: str) -> str:
        """`%%ops.<id>.results.<name>%%` from an earlier op's results (first match)."""

        def replace(match: re.Match[str]) -> str:
            values = self.job.results_of(match.group(1)).get(match.group(2))
            if not values:
                raise JobError(f"{match.group(0)}: op {match.group(1)} has no such result")
            return str(values[0])

        return _PLACEHOLDER.sub(replace, text)

    def _fill(self, items: list[str] | None) -> list[str] | None:
        return [self._fill_text(item) for item in items] if items is not None else None

    # -- ending -------------------------------------------------------------------------------

    async def _stopped(self) -> None:
        log.info("op.stopping", job_id=self.job.job_id, op=self.op.id, detached=self.job.detached)
        container_id = self.record.get("container_id")
        if container_id and self.record.get("state") == OpState.RUNNING:
            await self.job.containers.stop(container_id)
            await asyncio.to_thread(self._join_logs)
        if self.record.get("state") not in FINAL:
            await self.set(state=OpState.STOPPED, ended=time.time(), error=self.job.stop_reason)

    async def _clean_up(self) -> None:
        container_id = self.record.get("container_id")
        if container_id:
            await self.job.containers.remove(container_id)
        for name in self.record.get("writable_layers", []):
            await self.job.containers.remove_volume(name)
        await self.job.cache.store.remove_op_scratch(self.job.job_id, self.op.id)
        for lease_id in self.record.get("lease_ids", []):
            await self.job.cache.store.release_id(lease_id)
        if self.private_image and self.image_lease is not None:
            try:
                await self.job.images.remove(self.image_lease.entry)
            except NosanaCacheError as exc:  # the engine is away: it goes when its entry expires
                log.warning("op.private_image_kept", op=self.op.id, error=exc.message)


def _command(cmd: str | list[str] | None) -> list[str] | None:
    """A string runs through `/bin/sh -c`, a list as it is (Nosana's rule)."""
    if cmd is None:
        return None
    return ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)


def _command_list(entrypoint: str | list[str] | None) -> list[str] | None:
    if entrypoint is None:
        return None
    return shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint)


def _clean_target(target: str) -> str:
    return target.rstrip("/") or "/"


def _seconds(stamp: str | None) -> float | None:
    """Docker's RFC 3339 log timestamp as seconds since the epoch (for `since`)."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None
