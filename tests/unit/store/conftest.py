from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.settings import StoreSettings
from daemon.store import Store
from daemon.util.clock import ManualClock
from tests.conftest import assert_no_stray_tasks

OpenStore = Callable[..., Any]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store_settings(tmp_path: Path) -> Callable[..., StoreSettings]:
    def make(**overrides: Any) -> StoreSettings:
        values: dict[str, Any] = {"path": tmp_path / "store", "min_free": 0}
        values.update(overrides)
        return StoreSettings.model_validate(values)

    return make


@pytest.fixture
async def store(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> AsyncIterator[Store]:
    async with Store.open(store_settings(), clock=clock) as opened:
        yield opened
    assert_no_stray_tasks()
