"""Range as the Hub's content host takes it, and the headers clients read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.hub.serving import file_headers
from daemon.ranges import Unsatisfiable, parse_range
from tests.unit.hub.listings import COMMIT, SHA, listing


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("bytes=0-0", (0, 1)),
        ("bytes=10-99", (10, 100)),
        ("bytes=10-", (10, 1000)),
        ("bytes=-10", (990, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=990-5000", (990, 1000)),
        ("bytes=0-1,5-9", None),  # several ranges: the whole file, as RFC 9110 allows
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_a_single_byte_range_is_clipped_to_the_file(
    header: str | None, span: tuple[int, int] | None
) -> None:
    assert parse_range(header, 1000) == span


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=5-4", "bytes=-0"])
def test_a_range_past_the_end_is_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 1000)


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-" + "9" * 5000, (0, 1000)),
        ("bytes=-" + "9" * 5000, (0, 1000)),
        ("bytes=" + "0" * 5000 + "10-" + "0" * 5000 + "19", (10, 20)),
        ("bytes=٣-", None),  # digits of another script: not a range this endpoint takes
    ],
)
def test_a_position_is_read_by_its_digits_however_many(
    header: str, span: tuple[int, int] | None
) -> None:
    assert parse_range(header, 1000) == span


def test_a_start_of_thousands_of_digits_is_past_the_end() -> None:
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=" + "1" * 5000 + "-", 1000)


@given(size=st.integers(1, 10**12), first=st.integers(0, 10**12), last=st.integers(0, 10**12))
def test_any_answered_range_lies_inside_the_file(size: int, first: int, last: int) -> None:
    try:
        span = parse_range(f"bytes={first}-{last}", size)
    except Unsatisfiable:
        assert first >= size or first > last
        return
    assert span is not None
    assert 0 <= span[0] < span[1] <= size


def test_an_lfs_file_is_named_by_its_sha256_and_a_git_file_by_its_blob_id() -> None:
    kept = listing()
    lfs_file, git_file = kept.file("model.safetensors"), kept.file("config.json")
    assert lfs_file is not None
    assert git_file is not None
    weights = file_headers(kept, lfs_file)
    assert weights["ETag"] == weights["X-Linked-Etag"] == f'"{SHA}"'
    assert weights["X-Linked-Size"] == "1000"
    assert weights["X-Repo-Commit"] == COMMIT
    config = file_headers(kept, git_file)
    assert config["ETag"] == f'"{"1" * 40}"'
    assert "X-Linked-Etag" not in config
