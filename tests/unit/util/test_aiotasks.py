"""AllOrNothing: a set of tasks that grows while it runs, all done or the first failure."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from daemon.util.aiotasks import AllOrNothing


async def test_tasks_spawned_while_it_runs_are_awaited() -> None:
    done: list[int] = []

    async def step(n: int) -> None:
        await asyncio.sleep(0)
        done.append(n)
        if n < 3:
            tasks.spawn(step(n + 1))

    async with AllOrNothing() as tasks:
        tasks.spawn(step(0))
    assert done == [0, 1, 2, 3]


async def test_the_first_failure_cancels_the_others_and_is_raised_itself() -> None:
    cancelled = asyncio.Event()
    failing = asyncio.Event()

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def fails() -> None:
        await failing.wait()
        raise ValueError("first")

    tasks = AllOrNothing()

    async def run() -> None:
        async with tasks:
            tasks.spawn(waits())
            tasks.spawn(fails())
            failing.set()
            await asyncio.Event().wait()  # the failure cancels the body too

    with pytest.raises(ValueError, match="first"):
        await run()
    assert cancelled.is_set()
    late = asyncio.sleep(0)
    assert not tasks.spawn(late)  # ended: the coroutine is closed, never run (no warning)
    assert inspect.getcoroutinestate(late) == inspect.CORO_CLOSED
