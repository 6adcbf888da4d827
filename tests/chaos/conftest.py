"""The chaos suite: faults, hostile input and load against the real daemon and peers.

Everything here is slow (minutes, not seconds) and runs in CI; `pytest -m "not slow"` leaves it
out. `CHAOS_SEED` replays a run's random choices.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def rng() -> random.Random:
    return random.Random(int(os.environ.get("CHAOS_SEED", "10")))


# The integration suite's in-process cache over fresh storage, for the chaos cases that do not
# need the daemon's process.
from tests.integration.conftest import make_cache  # noqa: E402, F401
