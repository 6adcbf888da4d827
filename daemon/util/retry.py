"""One retry policy for whatever can fail for a moment: upstream HTTP, the Hub's metadata, the
Docker engine's pulls, the market's list.

    await retrying(operation, policy, clock, retry_if=..., give_up=...)

Pauses grow exponentially (0.25 s, 0.5 s, 1 s ... up to a cap) with jitter, so many callers
failing together do not come back together; a pause is never shorter than what the failure
asked for (`TemporaryError.delay`, from a Retry-After header), itself capped so that one
answer cannot stall a job for long. Pauses go through the injected clock, so tests of what
retries take no real time.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import TemporaryError
from ..logs import get_logger
from .clock import Clock

log = get_logger(__name__)
T = TypeVar("T")

MAX_ASKED_DELAY = 60.0
"""Longest pause a failure can ask for (Retry-After) before the next attempt."""


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 0
    """Attempts after the first (for `retrying`; a caller that schedules its own retries
    uses only `delay`)."""
    first_delay: float = 0.25
    max_delay: float = 30.0
    jitter: bool = True

    def delay(self, retry: int, failure: BaseException | None = None) -> float:
        """The pause before retry number `retry` (1-based) after `failure`."""
        pause = min(self.max_delay, self.first_delay * 2.0 ** (retry - 1))
        if self.jitter:
            pause *= 0.5 + random.random()
        asked = failure.delay if isinstance(failure, TemporaryError) else 0.0
        return max(pause, min(asked, MAX_ASKED_DELAY))


async def retrying(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    clock: Clock,
    *,
    retry_if: Callable[[BaseException], bool],
    on_retry: Callable[[BaseException, int], None] | None = None,
    ready_again: Callable[[], Awaitable[bool]] | None = None,
    give_up: Callable[[BaseException, int], BaseException] | None = None,
) -> T:
    """`operation()`, run again after a pause while it fails with what `retry_if` accepts.

    `on_retry(failure, retry)` is told before each pause (to log it); `ready_again()`, after
    it, may say the other side is still away, which ends the retries at once. When retries
    end, the last failure is raised, or what `give_up(failure, attempts)` makes of it.
    """
    retry = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not retry_if(exc):
                raise
            retry += 1
            if retry > policy.retries:
                if give_up is None:
                    raise
                raise give_up(exc, retry) from exc
            if on_retry is not None:
                on_retry(exc, retry)
            await clock.sleep(policy.delay(retry, exc))
            if ready_again is not None and not await ready_again():
                raise
