"""One resource helper, played by the daemon: the resource from the store into the volume.

Started by the node's `start`, it acquires the resource through the daemon's cache (a hit asks
no one; a miss is the daemon's parallel, verified fetch, the site store first), fills the
volume (fill.py) and writes what the helper writes: status lines on stdout with the real
bytes and file counts, exit 0; or, on failure, an error line on stderr and exit 1. The lines
are kept (bounded) for the node's followed and later log reads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cache import Cache
from ..errors import NosanaCacheError
from ..logs import get_logger
from ..sources import Resource
from ..store import Lease
from ..util.clock import Clock
from .fill import FillProgress, fill_volume
from .helper_spec import error_line, status_line
from .record import NodeRequest, NodeRequests

log = get_logger(__name__)

PROGRESS_EVERY = 0.5
MAX_LINES = 2000


@dataclass
class HelperRun:
    id: str
    name: str
    resource: Resource
    volume: str
    mountpoint: Path
    body: dict[str, Any]
    clock: Clock = field(repr=False)
    created_at: float = field(init=False)
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    lines: list[tuple[int, float, bytes]] = field(default_factory=list)
    """The last `MAX_LINES` lines (stream, time, line); `emitted` counts every one."""
    emitted: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None
    linked: bool = False

    def __post_init__(self) -> None:
        self.created_at = self.clock.now()

    @property
    def state(self) -> str:
        if self.exit_code is not None:
            return "exited"
        return "running" if self.started_at is not None else "created"

    async def emit(self, stream: int, line: bytes) -> None:
        async with self.changed:
            self.lines.append((stream, self.clock.now(), line))
            self.emitted += 1
            del self.lines[:-MAX_LINES]
            self.changed.notify_all()

    async def exit(self, code: int) -> None:
        async with self.changed:
            self.exit_code = code
            self.finished_at = self.clock.now()
            self.changed.notify_all()


class Worker:
    """What a started helper does; the outcome goes to `requests` for status."""

    def __init__(self, cache: Cache, requests: NodeRequests, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock
        self.requests = requests
        self.linked_volumes: dict[str, Path] = {}
        """Volumes filled with links to the store: made copies before a writable mount."""

    async def run(self, run: HelperRun, *, copy: bool) -> None:
        began = self.clock.monotonic()
        lease: Lease | None = None
        try:
            lease = await self._acquire(run)
            progress = await self._fill(run, lease, copy=copy)
        except NosanaCacheError as exc:
            await run.emit(2, error_line(exc.message))
            await run.exit(1)
            self._record(run, None, began, error=exc.message)
            log.warning("node.helper_failed", container=run.id, error=exc.message)
            return
        except OSError as exc:
            message = f"cannot fill volume {run.volume}: {exc.strerror or exc}"
            await run.emit(2, error_line(message))
            await run.exit(1)
            self._record(run, lease, began, error=message)
            return
        finally:
            if lease is not None:
                await self.cache.store.release(lease)
        run.linked = progress.linked > 0
        if run.linked:
            self.linked_volumes[run.volume] = run.mountpoint
        await run.exit(0)
        self._record(run, lease, began, progress=progress)

    async def _acquire(self, run: HelperRun) -> Lease:
        """The lease, with status lines while a miss downloads (the node's progress bar)."""
        acquiring = asyncio.create_task(self.cache.acquire(run.resource, f"node:{run.id}"))
        try:
            entry = await self.cache.ensure(run.resource)
            while not acquiring.done():
                done = self.cache.store.progress(entry.id)
                total = done.bytes_total if done and done.bytes_total else entry.size_bytes
                await run.emit(
                    1, status_line(total, done.bytes_done if done else 0, entry.file_count, 0)
                )
                await asyncio.wait({acquiring}, timeout=PROGRESS_EVERY)
            return acquiring.result()
        except NosanaCacheError:
            return await acquiring  # its own error, the one that counts
        except BaseException:
            acquiring.cancel()
            lease = await asyncio.gather(acquiring, return_exceptions=True)
            if isinstance(lease[0], Lease):
                await self.cache.store.release(lease[0])
            raise

    async def _fill(self, run: HelperRun, lease: Lease, *, copy: bool) -> FillProgress:
        entry = lease.entry
        view = lease.view
        if view is None:
            raise NosanaCacheError(f"entry {entry.id} has no view to fill the volume from")
        progress = FillProgress()
        await run.emit(1, status_line(entry.size_bytes, 0, entry.file_count, 0))
        filling = asyncio.create_task(
            asyncio.to_thread(fill_volume, view, run.mountpoint, progress, copy=copy)
        )
        while not filling.done():
            await asyncio.wait({filling}, timeout=PROGRESS_EVERY)
            if not filling.done():
                line = status_line(
                    entry.size_bytes, progress.bytes, entry.file_count, progress.files
                )
                await run.emit(1, line)
        filling.result()
        await run.emit(
            1, status_line(entry.size_bytes, progress.bytes, entry.file_count, progress.files)
        )
        return progress

    def _record(
        self,
        run: HelperRun,
        lease: Lease | None,
        began: float,
        *,
        progress: FillProgress | None = None,
        error: str | None = None,
    ) -> None:
        seconds = self.clock.monotonic() - began
        entry = lease.entry if lease is not None else None
        saved = None
        if lease is not None and lease.hit and entry is not None and entry.downloaded_at:
            saved = max(0.0, entry.downloaded_at - entry.created_at - seconds)
        self.requests.add(
            NodeRequest(
                at=self.clock.now(),
                type=run.resource.type,
                source=entry.source if entry else _describe(run.resource),
                outcome="failed" if error else ("hit" if lease and lease.hit else "miss"),
                bytes=progress.bytes if progress else 0,
                files=progress.files if progress else 0,
                seconds=round(seconds, 3),
                saved_seconds=round(saved, 3) if saved is not None else None,
                volume=run.volume,
                linked=run.linked,
                error=error,
            )
        )
        log.info(
            "node.helper_served",
            container=run.id,
            volume=run.volume,
            hit=bool(lease and lease.hit),
            files=progress.files if progress else 0,
            seconds=round(seconds, 3),
            error=error,
        )


def _describe(resource: Resource) -> str:
    data = resource.model_dump(exclude_none=True, exclude={"accessToken", "IAM"})
    return " ".join(str(value) for key, value in data.items() if key != "type")
