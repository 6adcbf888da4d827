"""The connection slots: a freed slot goes to the queue holding fewest, parts of one queue in
the order asked, and a cancelled waiter neither keeps nor loses a slot.

Each holder is a task that takes its slot and keeps it until the test sets its event, so which
slot frees when is the test's choice; `settle()` lets every task that can run, run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from daemon.sources.slots import Slots


class Holders:
    """Tasks that each take a slot for a queue and note the order they got it in."""

    def __init__(self, slots: Slots) -> None:
        self.slots = slots
        self.granted: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def ask(self, name: str, queue: Hashable) -> None:
        self.release[name] = asyncio.Event()

        async def hold() -> None:
            async with self.slots.held(queue):
                self.granted.append(name)
                await self.release[name].wait()

        self.tasks[name] = asyncio.create_task(hold())

    async def end(self, name: str) -> None:
        self.release[name].set()
        await self.tasks[name]
        await settle()

    async def end_all(self) -> None:
        for event in self.release.values():
            event.set()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_newcomer_gets_the_next_freed_slot_before_the_parts_queued_ahead_of_it() -> None:
    holders = Holders(Slots(2))
    for n in range(5):
        holders.ask(f"big{n}", "big")
    await settle()
    holders.ask("manifest", "manifest")
    await settle()
    assert holders.granted == ["big0", "big1"]
    assert holders.slots.locked()
    await holders.end("big0")
    assert holders.granted == ["big0", "big1", "manifest"]  # not big2, asked before it
    await holders.end("manifest")
    await holders.end("big1")
    assert holders.granted[3:] == ["big2", "big3"]  # then the big queue in the order asked
    await holders.end_all()
    assert not holders.slots.locked()
    assert holders.slots.held_by("big") == 0


async def test_downloads_side_by_side_converge_on_equal_shares() -> None:
    holders = Holders(Slots(4))
    for n in range(4):
        holders.ask(f"a{n}", "a")
    await settle()
    for n in range(4, 8):
        holders.ask(f"a{n}", "a")
    for n in range(4):
        holders.ask(f"b{n}", "b")
    await settle()
    for n in range(3):
        await holders.end(f"a{n}")
    # Each freed slot went to whichever held fewer: b (0, then 1, against a's 3 and 2), then
    # a (1 against b's 2).
    assert holders.granted[4:] == ["b0", "b1", "a4"]
    assert (holders.slots.held_by("a"), holders.slots.held_by("b")) == (2, 2)
    await holders.end_all()


async def test_of_queues_holding_as_many_the_one_that_has_waited_longest_goes_first() -> None:
    holders = Holders(Slots(1))
    holders.ask("first", "x")
    await settle()
    holders.ask("z0", "z")  # z begins waiting before y; both hold none
    holders.ask("y0", "y")
    await settle()
    await holders.end("first")
    assert holders.granted == ["first", "z0"]
    await holders.end_all()


async def test_a_cancelled_waiter_keeps_no_slot_and_takes_none_from_others() -> None:
    holders = Holders(Slots(1))
    holders.ask("first", "x")
    await settle()
    holders.ask("cancelled", "y")
    holders.ask("next", "z")
    await settle()
    holders.tasks["cancelled"].cancel()
    await settle()
    await holders.end("first")
    assert holders.granted == ["first", "next"]
    await holders.end("next")
    assert not holders.slots.locked()
    await holders.end_all()


async def test_a_waiter_cancelled_after_its_grant_gives_the_slot_back() -> None:
    slots = Slots(1)
    first = slots.held("x")
    await first.__aenter__()
    waiting = asyncio.ensure_future(slots.held("y").__aenter__())
    await settle()
    await first.__aexit__(None, None, None)  # grants y's future, without yielding to y's task
    assert slots.held_by("y") == 1
    waiting.cancel()
    await settle()
    assert waiting.cancelled()
    assert slots.held_by("y") == 0
    assert not slots.locked()
