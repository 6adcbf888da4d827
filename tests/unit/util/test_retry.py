"""The one retry policy: pauses, Retry-After, giving up, on a manual clock (no real waiting)."""

from __future__ import annotations

import itertools

import pytest

from daemon.errors import UpstreamError, UpstreamUnavailable
from daemon.util.clock import ManualClock
from daemon.util.retry import MAX_ASKED_DELAY, RetryPolicy, retrying


class Flaky:
    """Fails `failures` times with the given errors (cycled), then answers 'ok'."""

    def __init__(self, failures: int, *errors: Exception) -> None:
        self.failures = failures
        self.errors = errors or (UpstreamUnavailable("down"),)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.errors[(self.calls - 1) % len(self.errors)]
        return "ok"


def temporary(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamUnavailable)


async def test_pauses_double_from_the_first_up_to_the_cap() -> None:
    clock = ManualClock()
    pauses: list[float] = []
    policy = RetryPolicy(retries=6, first_delay=1.0, max_delay=8.0, jitter=False)
    start = clock.now()

    def note(_exc: BaseException, _retry: int) -> None:
        pauses.append(clock.now())

    assert await retrying(Flaky(6), policy, clock, retry_if=temporary, on_retry=note) == "ok"
    pauses.append(clock.now())
    gaps = [b - a for a, b in itertools.pairwise(pauses)]
    assert pauses[0] == start
    assert gaps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_stays_within_half_to_one_and_a_half_of_the_pause() -> None:
    policy = RetryPolicy(first_delay=2.0, max_delay=30.0)
    delays = [policy.delay(3) for _ in range(500)]
    assert all(4.0 <= d <= 12.0 for d in delays)
    assert max(delays) - min(delays) > 2.0  # it does vary


def test_a_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(first_delay=0.25, jitter=False)
    assert policy.delay(1, UpstreamUnavailable("busy", delay=7.0)) == 7.0
    assert policy.delay(1, UpstreamUnavailable("busy", delay=3600.0)) == MAX_ASKED_DELAY
    assert policy.delay(1, UpstreamUnavailable("busy", delay=0.0)) == 0.25
    assert policy.delay(1, ValueError("not temporary")) == 0.25


async def test_what_retry_if_refuses_is_raised_at_once() -> None:
    flaky = Flaky(3, UpstreamError("refused"))
    with pytest.raises(UpstreamError, match="refused"):
        await retrying(flaky, RetryPolicy(retries=5), ManualClock(), retry_if=temporary)
    assert flaky.calls == 1


async def test_after_the_last_retry_give_up_names_the_attempts() -> None:
    flaky = Flaky(100)
    clock = ManualClock()

    def give_up(exc: BaseException, attempts: int) -> Exception:
        return UpstreamError(f"gave up after {attempts} attempts: {exc}")

    with pytest.raises(UpstreamError, match="gave up after 4 attempts: down") as caught:
        await retrying(flaky, RetryPolicy(retries=3), clock, retry_if=temporary, give_up=give_up)
    assert flaky.calls == 4
    assert isinstance(caught.value.__cause__, UpstreamUnavailable)


async def test_without_give_up_the_last_failure_itself_is_raised() -> None:
    flaky = Flaky(100)
    with pytest.raises(UpstreamUnavailable, match="down"):
        await retrying(flaky, RetryPolicy(retries=2), ManualClock(), retry_if=temporary)
    assert flaky.calls == 3


async def test_ready_again_saying_no_ends_the_retries() -> None:
    flaky = Flaky(100)
    asked = 0

    async def ready_again() -> bool:
        nonlocal asked
        asked += 1
        return asked < 2

    with pytest.raises(UpstreamUnavailable):
        await retrying(
            flaky,
            RetryPolicy(retries=10),
            ManualClock(),
            retry_if=temporary,
            ready_again=ready_again,
        )
    assert (flaky.calls, asked) == (2, 2)
