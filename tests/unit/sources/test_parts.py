"""Which part in flight gives up bytes at a download's tail, and how many."""

from __future__ import annotations

from daemon.sources.parts import MIN_SPLIT, Cursor, Tail, cut

MB = 1024 * 1024


def test_missing_ranges_are_cut_into_parts_of_at_most_part_size() -> None:
    assert cut([(0, 5 * MB), (7 * MB, 8 * MB)], 2 * MB) == [
        (0, 2 * MB),
        (2 * MB, 4 * MB),
        (4 * MB, 5 * MB),
        (7 * MB, 8 * MB),
    ]


def test_the_part_with_most_left_gives_the_second_half_of_what_it_has_not_taken() -> None:
    tail = Tail()
    started: list[Cursor] = []

    def start(cursor: Cursor) -> bool:
        started.append(cursor)
        return True

    small, large = Cursor(0, 16 * MB), Cursor(16 * MB, 48 * MB)
    small.taken = 2 * MB
    large.taken = 20 * MB  # written or buffered: 28 MiB left
    with tail.streaming(small, "f", start), tail.streaming(large, "f", start):
        new = tail.split()
    assert new is not None
    assert started == [new]
    assert (new.offset, new.taken, new.end) == (34 * MB, 34 * MB, 48 * MB)
    assert (large.taken, large.end) == (20 * MB, 34 * MB)
    assert small.end == 16 * MB


def test_no_part_is_split_below_twice_the_minimum_or_once_it_stops_streaming() -> None:
    tail = Tail()
    cursor = Cursor(0, 2 * MIN_SPLIT + 1)
    cursor.taken = 2
    with tail.streaming(cursor, "f", lambda new: True):
        assert tail.split() is None
        cursor.taken = 1
        assert tail.split() is not None
    assert tail.split() is None


def test_a_download_that_takes_no_new_part_keeps_its_bytes() -> None:
    tail = Tail()
    cursor = Cursor(0, 4 * MIN_SPLIT)
    with tail.streaming(cursor, "f", lambda new: False):  # its download is failing
        assert tail.split() is None
    assert cursor.end == 4 * MIN_SPLIT
