"""A download's parts."""

from __future__ import annotations

from daemon.sources.parts import cut

MB = 1024 * 1024


def test_missing_ranges_are_cut_into_parts_of_at_most_part_size() -> None:
    assert cut([(0, 5 * MB), (7 * MB, 8 * MB)], 2 * MB) == [
        (0, 2 * MB),
        (2 * MB, 4 * MB),
        (4 * MB, 5 * MB),
        (7 * MB, 8 * MB),
    ]
