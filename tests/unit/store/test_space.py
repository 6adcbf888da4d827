"""Room for downloads: evict oldest unpinned, unused entries first; refuse before writing."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from daemon.errors import InsufficientSpace
from daemon.settings import StoreSettings
from daemon.store import Store
from daemon.util.clock import ManualClock
from tests.unit.store.upstream import MemoryUpstream, request

KB = 1000


async def fill(store: Store, clock: ManualClock, name: str, size: int) -> str:
    lease = await store.acquire(request(name), MemoryUpstream({"f": os.urandom(size)}), "h")
    await store.release(lease)
    clock.advance(60)
    return lease.entry.id


async def test_the_oldest_unpinned_unused_entries_go_first(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> None:
    async with Store.open(store_settings(max_size=100 * KB), clock=clock) as store:
        oldest = await fill(store, clock, "oldest", 30 * KB)
        pinned = await fill(store, clock, "pinned", 30 * KB)
        await store.pin(pinned, "market")
        middle = await fill(store, clock, "middle", 30 * KB)
        await fill(store, clock, "new", 30 * KB)  # needs room: oldest goes, pinned stays
        ids = {e.id for e in await store.entries()}
        assert oldest not in ids
        assert {pinned, middle} <= ids
        room = await store.space.room()
        assert room.used <= 100 * KB
        assert store.stats.evictions["space"] == 1


async def test_leased_entries_are_not_evicted(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> None:
    async with Store.open(store_settings(max_size=100 * KB), clock=clock) as store:
        held = await store.acquire(
            request("held"), MemoryUpstream({"f": os.urandom(60 * KB)}), "job"
        )
        with pytest.raises(InsufficientSpace) as caught:
            await store.acquire(request("big"), MemoryUpstream({"f": os.urandom(60 * KB)}), "h")
        assert caught.value.needed == 60 * KB
        assert "60000 bytes" in str(caught.value)
        assert (await store.get(held.entry.id)).state == "ready"


async def test_refusal_happens_before_writing_and_evicts_nothing(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> None:
    async with Store.open(store_settings(max_size=100 * KB), clock=clock) as store:
        keep = await fill(store, clock, "keep", 40 * KB)
        upstream = MemoryUpstream({"a": os.urandom(70 * KB), "b": os.urandom(70 * KB)})
        with pytest.raises(InsufficientSpace) as caught:
            await store.acquire(request("too-big"), upstream, "h")
        assert caught.value.needed == 140 * KB
        assert caught.value.available == 60 * KB
        assert upstream.fetched == {}
        assert list(store.paths.tmp.iterdir()) == []
        assert keep in {e.id for e in await store.entries()}
        failed = [e for e in await store.entries() if e.state == "failed"]
        assert len(failed) == 1
        assert "needs 140000 bytes, 60000 bytes available" in (failed[0].error or "")


async def test_min_free_is_kept_on_the_filesystem(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> None:
    async with Store.open(store_settings(min_free="1000PiB"), clock=clock) as store:
        with pytest.raises(InsufficientSpace):
            await store.acquire(request("x"), MemoryUpstream({"f": b"tiny"}), "h")


async def test_usage_comes_from_the_index_and_matches_the_disk(
    store: Store, clock: ManualClock
) -> None:
    for i in range(4):
        await fill(store, clock, f"e{i}", (i + 1) * 10 * KB)
    room = await store.space.room()
    on_disk = sum(p.stat().st_size for p in store.paths.blobs.glob("*/*"))
    assert room.used == on_disk == 100 * KB
