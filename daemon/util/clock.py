"""Time, injected: ttl, sweeps, retry pauses, timestamps and durations go through a `Clock`,
so tests move time by hand and a retry's pause takes no real time in them.

`now()` is the wall clock (what records and entries keep); `monotonic()` is for durations and
deadlines inside one process, which a wall clock set back or forward must not bend."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (what `downloaded_at` and `expires_at` hold)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go back (durations, deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Pause this task for `seconds` of this clock's time."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to; for tests of ttl and sweep rules."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._monotonic = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        """Moves with `advance`, as the wall clock does (it starts at 0)."""
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._monotonic += seconds

    async def sleep(self, seconds: float) -> None:
        """Time moves on at once (other tasks get a turn): a pause costs a test nothing."""
        self.advance(seconds)
        await asyncio.sleep(0)
