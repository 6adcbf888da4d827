"""A download's parts: the byte ranges it is cut into, and how far each has got.

A download is cut into parts of `download.part_size`, each fetched by one ranged request
and resumed after a drop from the first byte it has not written (transfer.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class Cursor:
    """How far one part has got: a retry after a drop starts at `offset`. The part re-reads
    `end` as it streams, and never takes a byte at or past it."""

    offset: int
    """The first byte not yet written."""
    end: int
    """One past the last byte this part is to write."""
    taken: int = field(init=False)
    """The first byte not yet taken from the response: `offset` plus what is buffered."""

    def __post_init__(self) -> None:
        self.taken = self.offset


def cut(missing: list[tuple[int, int]], part_size: int) -> list[tuple[int, int]]:
    """`[start, end)` parts of at most `part_size` covering the `missing` ranges."""
    parts = []
    for start, end in missing:
        for offset in range(start, end, part_size):
            parts.append((offset, min(end, offset + part_size)))
    return parts
