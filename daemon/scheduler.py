"""Periodic work (the store sweep, the market refresh) on APScheduler's asyncio scheduler.

Each job is wrapped so that a failure is logged with its traceback and the job simply runs
again at its next tick: a scheduler job never dies silently. Jobs do not overlap themselves
(`max_instances=1`) and missed ticks coalesce into one run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .logs import get_logger
from .util.clock import Clock, SystemClock

log = get_logger(__name__)


@dataclass
class JobHealth:
    """What /v1/status says of a periodic job."""

    runs: int = 0
    failures: int = 0
    last_error: str | None = None
    last_run_at: float | None = None
    last_duration: float | None = None


class Scheduler:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self.health: dict[str, JobHealth] = {}

    def every(
        self,
        seconds: float,
        name: str,
        fn: Callable[[], Awaitable[Any]],
        *,
        first_in: float | None = None,
    ) -> None:
        """Run `fn` every `seconds`, first after `first_in` seconds (default: one period)."""
        first = datetime.now(UTC) + timedelta(seconds=seconds if first_in is None else first_in)
        self._scheduler.add_job(
            self._guard(name, fn),
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            next_run_time=first,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            replace_existing=True,
        )

    def once(self, delay: float, name: str, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run `fn` once, `delay` seconds from now (replacing a pending run of that name)."""
        self._scheduler.add_job(
            self._guard(name, fn),
            "date",
            run_date=datetime.now(UTC) + timedelta(seconds=delay),
            id=name,
            name=name,
            misfire_grace_time=None,
            replace_existing=True,
        )

    def _guard(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        """`fn`, with its failures logged and counted instead of ending the job."""
        health = self.health.setdefault(name, JobHealth())

        async def guarded() -> None:
            started = self.clock.monotonic()
            health.runs += 1
            health.last_run_at = self.clock.now()
            try:
                await fn()
                health.last_error = None
            except Exception as exc:
                health.failures += 1
                health.last_error = str(exc) or type(exc).__name__
                log.exception("scheduler.job_failed", job=name)
            finally:
                health.last_duration = self.clock.monotonic() - started

        return guarded

    def start(self) -> None:
        self._scheduler.start()

    async def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
