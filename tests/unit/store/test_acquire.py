"""Acquire: a miss fetches once and builds a read-only view; a hit needs no upstream at all."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat

from daemon.store import EntryState, Store
from daemon.util.clock import ManualClock
from tests.unit.store.upstream import MemoryUpstream, request


def blob_files(store: Store) -> list[str]:
    root = store.paths.blobs
    return sorted(p.parent.name + p.name for p in root.glob("*/*"))


async def test_a_miss_fetches_and_builds_a_read_only_view(store: Store) -> None:
    upstream = MemoryUpstream({"config.json": b"{}", "weights/model.bin": os.urandom(300_000)})
    lease = await store.acquire(request("a"), upstream, holder="job:1")
    assert not lease.hit
    assert lease.entry.state == EntryState.READY
    assert lease.entry.file_count == 2
    assert lease.entry.size_bytes == 300_002
    assert lease.view is not None
    for path, data in upstream.files.items():
        target = lease.view / path
        assert target.read_bytes() == data
        assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert stat.S_IMODE((lease.view / "weights").stat().st_mode) == 0o555
    assert blob_files(store) == sorted(
        hashlib.sha256(d).hexdigest() for d in upstream.files.values()
    )
    assert list(store.paths.tmp.iterdir()) == []


async def test_a_hit_asks_upstream_nothing_and_counts(store: Store) -> None:
    upstream = MemoryUpstream({"a.txt": b"alpha"})
    first = await store.acquire(request("hit"), upstream, holder="job:1")
    second = await store.acquire(request("hit"), upstream, holder="job:2")
    assert second.hit
    assert second.entry.id == first.entry.id
    assert upstream.resolve_calls == 1
    assert upstream.fetched["a.txt"] == 1
    entry = await store.get(first.entry.id)
    assert entry.hits == 1
    assert entry.leases == 2


async def test_identical_content_is_stored_once_across_files_and_entries(store: Store) -> None:
    shared = os.urandom(100_000)
    one = MemoryUpstream({"x/shared.bin": shared, "one.txt": b"1"})
    two = MemoryUpstream({"y/same.bin": shared, "two.txt": b"2", "copy.bin": shared})
    await store.acquire(request("one"), one, holder="h")
    lease = await store.acquire(request("two"), two, holder="h")
    assert len(blob_files(store)) == 3
    assert two.fetched["y/same.bin"] + two.fetched["copy.bin"] == 0
    assert lease.view is not None
    assert (lease.view / "copy.bin").stat().st_ino == (lease.view / "y/same.bin").stat().st_ino


async def test_concurrent_acquires_share_one_fetch(store: Store) -> None:
    gate = asyncio.Event()
    upstream = MemoryUpstream({"big.bin": os.urandom(1_000_000), "small": b"s"}, gate=gate)
    tasks = [
        asyncio.create_task(store.acquire(request("herd"), upstream, holder=f"job:{i}"))
        for i in range(20)
    ]
    await asyncio.sleep(0.05)
    gate.set()
    leases = await asyncio.gather(*tasks)
    assert {lease.entry.id for lease in leases} == {leases[0].entry.id}
    assert upstream.resolve_calls == 1
    assert upstream.fetched == {"big.bin": 1, "small": 1}


async def test_a_blob_shared_by_two_requests_is_downloaded_once(store: Store) -> None:
    gate = asyncio.Event()
    shared = os.urandom(500_000)
    one = MemoryUpstream({"w.bin": shared}, gate=gate)
    two = MemoryUpstream({"other/w.bin": shared}, gate=gate)
    both = asyncio.gather(
        store.acquire(request("one"), one, holder="h"),
        store.acquire(request("two"), two, holder="h"),
    )
    await asyncio.sleep(0.05)
    gate.set()
    await both
    assert one.fetched["w.bin"] + two.fetched["other/w.bin"] == 1


async def test_a_new_upstream_version_is_a_new_entry_sharing_unchanged_blobs(
    store: Store, clock: ManualClock
) -> None:
    unchanged = os.urandom(200_000)
    upstream = MemoryUpstream({"w.bin": unchanged, "readme": b"v1"}, version="commit-1")
    old = await store.acquire(request("moving"), upstream, holder="h")
    await store.release(old)
    clock.advance(store.settings.ttl + 1)
    upstream.files["readme"] = b"v2"
    upstream.version = "commit-2"
    new = await store.acquire(request("moving"), upstream, holder="h")
    assert new.entry.id != old.entry.id
    assert upstream.fetched == {"w.bin": 1, "readme": 2}
    assert new.view is not None
    assert (new.view / "readme").read_bytes() == b"v2"
    report = await store.sweep()
    assert report.entries == 1
    assert [e.id for e in await store.entries()] == [new.entry.id]


async def test_an_expired_entry_in_use_is_revalidated_not_refetched(
    store: Store, clock: ManualClock
) -> None:
    upstream = MemoryUpstream({"w.bin": os.urandom(10_000)})
    first = await store.acquire(request("held"), upstream, holder="job:1")
    clock.advance(store.settings.ttl + 1)
    second = await store.acquire(request("held"), upstream, holder="job:2")
    assert second.entry.id == first.entry.id
    assert upstream.resolve_calls == 2
    assert upstream.fetched["w.bin"] == 1
    renewed = await store.get(first.entry.id)
    assert renewed.downloaded_at == clock.now()


async def test_inline_data_and_alias_hits(store: Store, clock: ManualClock) -> None:
    """Files whose sha256 is unknown upfront are found again through their upstream alias."""
    upstream = MemoryUpstream(
        {"k1": b"one", "k2": b"two"}, announce_sha256=False, alias_scope="s3://b"
    )
    first = await store.acquire(request("alias"), upstream, holder="h")
    await store.release(first)
    clock.advance(store.settings.ttl + 1)
    await store.sweep()
    assert await store.entries() == []
    again = await store.acquire(request("alias-2"), upstream, holder="h")
    assert upstream.fetched == {"k1": 2, "k2": 2}  # the blobs were swept: fetched again
    upstream.version = "v2"
    third = await store.acquire(request("alias-3"), upstream, holder="h")
    assert upstream.fetched == {"k1": 2, "k2": 2}  # alias known: linked without a download
    assert third.view is not None
    assert (third.view / "k1").read_bytes() == b"one"
    assert again.entry.id != third.entry.id
