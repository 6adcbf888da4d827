"""The ceiling the bench holds the daemon's use of a link to (bench/profiles.py `best_seconds`):
round trips before the first byte, slow start, then the caps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.profiles import Profile, best_seconds

MiB = 1024 * 1024
WIDE = Profile("wide", rtt=0.1, per_connection=1e12, aggregate=1e12, initial_window=1000)
WIDE = replace(WIDE, receive_window=1 << 40)  # no cap but the window's growth


def test_slow_start_doubles_the_window_every_round_trip() -> None:
    # 1000 + 2000 + 4000 bytes: three rounds after the two round trips of set-up.
    assert best_seconds(WIDE, 7000, setup_rtts=2, connections=1) == pytest.approx(0.5)
    # Half of the fourth round's 8000.
    assert best_seconds(WIDE, 11_000, setup_rtts=2, connections=1) == pytest.approx(0.55)
    # Two connections ramp together: twice the bytes in the same rounds.
    assert best_seconds(WIDE, 14_000, setup_rtts=2, connections=2) == pytest.approx(0.5)


def test_each_connection_is_held_to_its_cap_and_all_to_the_aggregate() -> None:
    capped = Profile("capped", rtt=0.1, per_connection=1 * MiB, aggregate=3 * MiB)
    # Long transfers end at the cap: one connection at 1 MiB/s, four at the aggregate's 3.
    one = best_seconds(capped, 100 * MiB, setup_rtts=0, connections=1)
    four = best_seconds(capped, 300 * MiB, setup_rtts=0, connections=4)
    assert 100 < one < 101
    assert 100 < four < 101


def test_set_up_and_slow_start_keep_any_client_under_the_far_links_cap() -> None:
    far = Profile("far", rtt=0.150, per_connection=10 * MiB, aggregate=200 * MiB)
    total = 1502 * MiB
    best = best_seconds(far, total, setup_rtts=6, connections=32)
    fraction = total / best / far.aggregate
    assert 0.75 < fraction < 0.9
    # The more there is to fetch, the less set-up and slow start weigh.
    bigger = best_seconds(far, 10 * total, setup_rtts=6, connections=32)
    assert 10 * total / bigger / far.aggregate > 0.97
