"""Time, injected: ttl, sweeps and retry pauses go through a `Clock`, so tests move time by
hand and a retry's pause takes no real time in them."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (what `downloaded_at` and `expires_at` hold)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Pause this task for `seconds` of this clock's time."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to; for tests of ttl and sweep rules."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Time moves on at once (other tasks get a turn): a pause costs a test nothing."""
        self.advance(seconds)
        await asyncio.sleep(0)
