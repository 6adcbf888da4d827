"""A download's parts, and which part in flight gives up half its bytes when a slot frees.

A download is cut into parts of `download.part_size`, each fetched by one ranged request. At
its end no part is left to start, and the parts still in flight finish one by one: fewer and
fewer connections carry bytes, and on a link that caps each connection (a CDN) the host's
link is no longer used in full. So when a part ends and a slot is free that no part waits for,
the part streaming with the most bytes not yet taken, of any download, gives up the second
half of them to a new part (work stealing, as aria2c's dynamic splitting):

    victim  [offset ···· taken ··········· middle ··········· end)
             written     buffered
    after   [offset ···· taken ··· end)    new part [middle ··· end)

The victim stops at its new end and closes its connection; it never takes a byte past it, so
each byte goes to the sink once. Only a part whose server honours Range streams here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..logs import get_logger

log = get_logger(__name__)

MiB = 1024 * 1024
MIN_SPLIT = 4 * MiB
"""The fewest bytes a split leaves each side. The new part waits a round trip for its first
byte (three, and slow start, on a new connection), and the victim closes its connection with
bytes in flight past its new end: at a CDN's 10 to 25 MiB/s a connection, a half of 4 MiB is
0.16 to 0.4 s of transfer, worth that. Halves of 2 MiB did better at a quarter of those rates
(bench/ab.py), but at full rates are as short as the round trips they cost."""


@dataclass(eq=False)
class Cursor:
    """How far one part has got: a retry after a drop starts at `offset`. A split moves `end`
    down while the part streams, never below `taken`, so the part re-reads it as it goes."""

    offset: int
    """The first byte not yet written."""
    end: int
    """One past the last byte this part is to write."""
    taken: int = field(init=False)
    """The first byte not yet taken from the response: `offset` plus what is buffered."""

    def __post_init__(self) -> None:
        self.taken = self.offset

    @property
    def left(self) -> int:
        """Bytes not yet taken, the most another part could have of this one's."""
        return self.end - self.taken


Start = Callable[[Cursor], bool]
"""Starts a part of one download for a cursor; False if the download is ending (a part of it
failed) and takes no new part."""


def cut(missing: list[tuple[int, int]], part_size: int) -> list[tuple[int, int]]:
    """`[start, end)` parts of at most `part_size` covering the `missing` ranges."""
    parts = []
    for start, end in missing:
        for offset in range(start, end, part_size):
            parts.append((offset, min(end, offset + part_size)))
    return parts


class Tail:
    """The parts streaming now, of every download of one `Transfer`, each with how to start
    another part of its download; `split()` picks the victim among all of them."""

    def __init__(self) -> None:
        self._streaming: dict[Cursor, tuple[str, Start]] = {}

    @contextlib.contextmanager
    def streaming(self, cursor: Cursor, name: str, start: Start) -> Iterator[None]:
        """While the block runs, `cursor` may be split; `start` starts the part that takes
        its second half."""
        self._streaming[cursor] = (name, start)
        try:
            yield
        finally:
            del self._streaming[cursor]

    def split(self) -> Cursor | None:
        """Give the second half of what the part with the most bytes left has not taken to a
        new part, started; None if no part has `2 * MIN_SPLIT` left."""
        if not self._streaming:
            return None
        victim = max(self._streaming, key=lambda cursor: cursor.left)
        if victim.left < 2 * MIN_SPLIT:
            return None
        name, start = self._streaming[victim]
        middle = victim.taken + victim.left // 2
        new = Cursor(middle, victim.end)
        if not start(new):
            return None
        victim.end = middle  # after start(): a download that takes no new part keeps its bytes
        log.debug("transfer.split", file=name, at=middle, end=new.end, taken=victim.taken)
        return new
