"""Expiry, pins, leases, sweeps: the 24-hour rule and what holds an entry past it."""

from __future__ import annotations

from collections.abc import Callable

from daemon.settings import StoreSettings
from daemon.store import Store
from daemon.util.clock import ManualClock
from tests.unit.store.upstream import MemoryUpstream, request

HOUR = 3600.0


async def test_an_entry_expires_ttl_after_its_download_and_hits_do_not_extend_it(
    store: Store, clock: ManualClock
) -> None:
    upstream = MemoryUpstream({"f": b"data"})
    lease = await store.acquire(request("ttl"), upstream, holder="h")
    await store.release(lease)
    entry = await store.get(lease.entry.id)
    assert store.expires_at(entry) == entry.downloaded_at + 24 * HOUR  # type: ignore[operator]
    clock.advance(23 * HOUR)
    hit = await store.acquire(request("ttl"), upstream, holder="h")
    assert hit.hit
    await store.release(hit)
    assert (await store.sweep()).entries == 0
    clock.advance(HOUR + 1)
    report = await store.sweep()
    assert report.entries == 1
    assert report.blobs == 1
    assert await store.entries() == []
    assert not store.views.path(lease.entry.id).exists()


async def test_with_last_use_a_hit_restarts_the_clock(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> None:
    async with Store.open(store_settings(ttl_from="last_use"), clock=clock) as store:
        upstream = MemoryUpstream({"f": b"data"})
        await store.release(await store.acquire(request("lu"), upstream, holder="h"))
        clock.advance(23 * HOUR)
        await store.release(await store.acquire(request("lu"), upstream, holder="h"))
        clock.advance(23 * HOUR)
        assert (await store.sweep()).entries == 0
        clock.advance(HOUR + 1)
        assert (await store.sweep()).entries == 1


async def test_a_pinned_entry_outlives_its_ttl_and_goes_at_the_first_sweep_after_unpin(
    store: Store, clock: ManualClock
) -> None:
    upstream = MemoryUpstream({"f": b"pinned"})
    lease = await store.acquire(request("pin"), upstream, holder="h")
    await store.release(lease)
    await store.pin(lease.entry.id, "market")
    clock.advance(100 * HOUR)
    assert (await store.sweep()).entries == 0
    still = await store.acquire(request("pin"), upstream, holder="h")
    assert still.hit  # pinned entries stay servable whatever their age
    await store.release(still)
    await store.unpin(lease.entry.id, "market")
    assert (await store.sweep()).entries == 1


async def test_a_leased_entry_outlives_its_ttl_and_goes_after_release(
    store: Store, clock: ManualClock
) -> None:
    upstream = MemoryUpstream({"f": b"in use"})
    lease = await store.acquire(request("lease"), upstream, holder="job:1/op:a")
    clock.advance(30 * HOUR)
    assert (await store.sweep()).entries == 0
    assert store.views.path(lease.entry.id).is_dir()
    await store.release(lease)
    assert (await store.sweep()).entries == 1


async def test_stale_leases_of_holders_that_did_not_come_back_are_dropped(
    store: Store, clock: ManualClock
) -> None:
    upstream = MemoryUpstream({"f": b"x"})
    await store.acquire(request("stale"), upstream, holder="job:gone/op:a")
    kept = await store.acquire(request("stale"), upstream, holder="job:alive/op:a")
    dropped = await store.release_holders(lambda holder: holder.startswith("job:alive/"))
    assert dropped == 1
    assert (await store.get(kept.entry.id)).leases == 1


async def test_pins_are_per_owner(store: Store, clock: ManualClock) -> None:
    upstream = MemoryUpstream({"f": b"x"})
    lease = await store.acquire(request("owners"), upstream, holder="h")
    await store.release(lease)
    await store.pin(lease.entry.id, "market")
    await store.pin(lease.entry.id, "operator")
    await store.unpin(lease.entry.id, "market")
    assert (await store.get(lease.entry.id)).pinned_by == ("operator",)
    assert await store.pinned_by("operator") == [lease.entry.id]
