"""What the store knows of a request, asked without changing anything (a dry run's question)."""

from __future__ import annotations

import pytest

from daemon.errors import NosanaCacheError
from daemon.store import Store
from daemon.util.clock import ManualClock
from tests.unit.store.upstream import MemoryUpstream, request

HOUR = 3600.0


async def test_a_ready_entry_is_cached_until_it_expires_and_looking_changes_nothing(
    store: Store, clock: ManualClock
) -> None:
    assert (await store.look_up(request("r"))).entry is None
    upstream = MemoryUpstream({"a": b"x" * 100, "b": b"y" * 50})
    await store.release(await store.acquire(request("r"), upstream, holder="h"))
    before = (await store.entries())[0]
    found = await store.look_up(request("r"))
    assert (found.cached, found.bytes_to_fetch) == (True, 0)
    assert found.entry is not None
    assert found.entry.id == before.id
    after = (await store.entries())[0]
    assert (after.hits, after.leases, after.last_used_at) == (before.hits, 0, before.last_used_at)
    clock.advance(25 * HOUR)  # expired, not swept yet: the same version would take nothing
    expired = await store.look_up(request("r"))
    assert (expired.cached, expired.bytes_to_fetch) == (False, 0)
    await store.pin(before.id, "market")
    assert (await store.look_up(request("r"))).cached  # pinned: served whatever its age


async def test_a_failed_entry_says_what_it_still_lacks(store: Store) -> None:
    upstream = MemoryUpstream({"good": b"g" * 10, "bad": b"b" * 1000}, wrong_bytes={"bad"})
    with pytest.raises(NosanaCacheError):
        await store.acquire(request("f"), upstream, holder="h")
    found = await store.look_up(request("f"))
    assert (found.cached, found.bytes_to_fetch) == (False, 1000)
