"""The store tells its fetch hooks once how each fetch ended (the site store's uploads start
there): a ready entry with its files as typed records, a failure without one, a hit nothing;
and the blobs those records name are read through the store by digest."""

from __future__ import annotations

import hashlib
import os

import pytest

from daemon.errors import NotFound, UpstreamIntegrityError
from daemon.store import EntryState, FetchEnded, Store, StoredFile
from tests.unit.store.upstream import MemoryUpstream, request


async def test_a_ready_entry_is_told_once_with_its_files_and_a_hit_not_at_all(
    store: Store,
) -> None:
    heard: list[FetchEnded] = []
    store.on_fetched(heard.append)
    upstream = MemoryUpstream({"sub/w.bin": os.urandom(70_000), "a.txt": b"alpha"})
    lease = await store.acquire(request("told"), upstream, holder="job:1")
    assert len(heard) == 1  # before the fetch's waiters go on
    ended = heard[0]
    assert ended.request == request("told")
    assert ended.entry_id == lease.entry.id
    assert ended.entry is not None
    assert ended.entry.id == lease.entry.id
    assert ended.entry.state == EntryState.READY
    assert ended.files == tuple(
        StoredFile(path, len(data), hashlib.sha256(data).hexdigest(), executable=False)
        for path, data in sorted(upstream.files.items())
    )
    assert await store.files(lease.entry.id) == list(ended.files)

    again = await store.acquire(request("told"), upstream, holder="job:2")
    assert again.hit
    await store.ensure(request("told"), upstream)  # ready: no fetch either
    assert len(heard) == 1


async def test_a_failed_fetch_is_told_without_an_entry(store: Store) -> None:
    heard: list[FetchEnded] = []
    store.on_fetched(heard.append)
    upstream = MemoryUpstream({"bad.bin": b"rotten bytes"}, wrong_bytes={"bad.bin"})
    with pytest.raises(UpstreamIntegrityError):
        await store.acquire(request("bad"), upstream, holder="job:1")
    assert len(heard) == 1
    assert heard[0].entry is None
    assert heard[0].files == ()
    assert heard[0].entry_id is not None  # the entry it was filling, now failed
    assert (await store.get(heard[0].entry_id)).state == EntryState.FAILED


async def test_a_hook_that_raises_breaks_neither_the_fetch_nor_the_other_hooks(
    store: Store,
) -> None:
    def broken(ended: FetchEnded) -> None:
        raise RuntimeError("a subscriber's bug")

    heard: list[FetchEnded] = []
    store.on_fetched(broken)
    store.on_fetched(heard.append)
    lease = await store.acquire(request("robust"), MemoryUpstream({"a": b"1"}), holder="h")
    assert lease.entry.state == EntryState.READY
    assert [e.entry_id for e in heard] == [lease.entry.id]


async def test_a_blob_opens_by_its_digest_and_a_missing_one_is_not_found(store: Store) -> None:
    data = os.urandom(10_000)
    await store.acquire(request("blob"), MemoryUpstream({"w.bin": data}), holder="h")
    with await store.open_blob(hashlib.sha256(data).hexdigest()) as blob:
        assert blob.read() == data
    with pytest.raises(NotFound):
        await store.open_blob(hashlib.sha256(b"never stored").hexdigest())
