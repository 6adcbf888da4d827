"""The connections of one `Transfer`, shared fairly among the downloads that want them.

A download of a large file asks for a slot for each of its parts at once: a 1.5 GiB layer in
8 MiB parts is 192 requests in the queue. With one first-come queue (`asyncio.Semaphore`)
everything asked after it waited for all of them: a manifest, a Hub listing, the small base
layer the engine must unpack first, a second job's model, each for the whole large file
(minutes on a slow link). Here each download has its own queue, and a freed slot goes to the
queue that holds the fewest slots now (of equals, the one that has waited longest):

    held    big ████████████████████████████████ (32)     waiting  big 160, manifest 1
    freed   one of big's                                  granted  manifest (holds 0)

So a newcomer gets the next slot that frees, and downloads running side by side converge on
equal shares; within one download, parts are granted in the order they were asked for, so a
file still arriving grows from its start (a reader streams it as it lands).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Hashable


class Slots:
    """`capacity` slots, granted per queue (a download, or one small request) fairly."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._held: Counter[Hashable] = Counter()
        self._waiting: dict[Hashable, deque[asyncio.Future[None]]] = {}
        """Queues with waiters, in the order they began waiting (dicts keep it)."""

    def locked(self) -> bool:
        """True if a new request would wait: no slot free, or some request already waiting."""
        return self._free == 0 or bool(self._waiting)

    def held_by(self, queue: Hashable) -> int:
        """How many slots `queue` holds now: what the grant compares."""
        return self._held[queue]

    @contextlib.asynccontextmanager
    async def held(self, queue: Hashable) -> AsyncIterator[None]:
        """Hold one slot for `queue` while the block runs."""
        await self._acquire(queue)
        try:
            yield
        finally:
            self._release(queue)

    async def _acquire(self, queue: Hashable) -> None:
        if self._free > 0 and not self._waiting:
            self._take(queue)
            return
        granted = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(queue, deque()).append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(queue)  # granted, then cancelled before it could run: give it back
            else:
                self._forget(queue, granted)
            raise

    def _forget(self, queue: Hashable, granted: asyncio.Future[None]) -> None:
        waiters = self._waiting.get(queue)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):
            waiters.remove(granted)
        if not waiters:
            del self._waiting[queue]

    def _take(self, queue: Hashable) -> None:
        self._free -= 1
        self._held[queue] += 1

    def _release(self, queue: Hashable) -> None:
        self._held[queue] -= 1
        if self._held[queue] <= 0:
            del self._held[queue]
        self._free += 1
        self._grant()

    def _grant(self) -> None:
        while self._free > 0 and self._waiting:
            # min() keeps the first of equals: the queue that has waited longest.
            queue = min(self._waiting, key=self._held.__getitem__)
            waiters = self._waiting[queue]
            granted = waiters.popleft()
            if not waiters:
                del self._waiting[queue]
            if granted.done():
                continue  # its waiter was cancelled
            self._take(queue)
            granted.set_result(None)
