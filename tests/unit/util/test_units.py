from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.util.units import (
    format_duration,
    format_size,
    human_duration,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("24h", 86400),
        ("1d", 86400),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("45", 45),
        (12, 12),
    ],
)
def test_durations_parse(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3x", "h", "10 m", "-5s", "1h-30m", "soon"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MiB", 512 * 1024**2),
        ("500GiB", 500 * 1024**3),
        ("10GB", 10 * 10**9),
        ("1024", 1024),
        ("1.5KiB", 1536),
        (7, 7),
    ],
)
def test_sizes_parse(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "12 potatoes", "MiB", "-1", "1XiB"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


@given(st.integers(min_value=0, max_value=10**7))
def test_durations_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=0, max_value=2**50))
def test_sizes_round_trip(size: int) -> None:
    assert parse_size(format_size(size)) == size


def test_human_durations_read_well() -> None:
    assert human_duration(3 * 3600 + 12 * 60 + 5) == "3h 12m"
    assert human_duration(45) == "45s"
    assert human_duration(2 * 86400 + 4 * 3600) == "2d 4h"
