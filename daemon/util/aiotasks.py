"""Background tasks that are never lost: each one is owned, logged if it crashes, and awaited.

A bare `loop.create_task` can be garbage-collected mid-flight and its exception is only seen
at interpreter exit; kopf's `create_guarded_task` is the model for this.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from ..logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")


class TaskSet:
    """The background tasks of one component; `close()` cancels and awaits what is left."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Start `coro` in a fresh context: a task outlives the request that started it, and
        must not log under that request's id."""
        task = asyncio.get_running_loop().create_task(
            coro, name=f"{self.name}:{name}", context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task.crashed", task=task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self, timeout: float = 5.0, grace: float = 0.0) -> None:
        """Cancel every task still running and wait (bounded) for them to finish; with
        `grace`, first let them finish on their own for up to that long (tasks whose work
        must not be lost to a shutdown, e.g. recording a debt)."""
        if grace > 0 and self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.warning("task.stuck_on_cancel", task=task.get_name())


async def all_or_nothing(coros: list[Coroutine[Any, Any, Any]]) -> None:
    """Run all concurrently; on the first failure cancel the rest and raise that failure
    itself (not an ExceptionGroup, so callers catch the error types they know)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


class AllOrNothing:
    """`all_or_nothing` for a set of tasks that grows while it runs (a download's parts, split
    as they go): leaving `async with` waits for every task, and the first failure cancels the
    others and is raised itself, not in an ExceptionGroup. An asyncio.TaskGroup underneath."""

    def __init__(self) -> None:
        self._group = asyncio.TaskGroup()

    async def __aenter__(self) -> AllOrNothing:
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        first: BaseException | None = None
        try:
            await self._group.__aexit__(kind, exc, tb)
        except BaseExceptionGroup as failed:
            first = failed.exceptions[0]  # in the order they came: the others followed it
        if first is not None:
            raise first

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> bool:
        """Start `coro` as one of the set; False (and `coro` closed, never run) once the set
        is failing or has ended."""
        try:
            self._group.create_task(coro)
        except RuntimeError:
            coro.close()
            return False
        return True
