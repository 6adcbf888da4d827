"""Garbage collection looks only at blobs that may have lost their last file, and the blobs'
totals are kept as they change: neither needs a scan of every blob (index._schema_v2)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Callable

import pytest

from daemon.errors import StoreError
from daemon.settings import StoreSettings
from daemon.store import Store, blob_index
from daemon.store import index as store_index
from daemon.util.clock import ManualClock
from daemon.util.db import Database
from tests.unit.store.upstream import MemoryUpstream, request


def candidates(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM gc_candidates").fetchone()[0])


async def test_a_collection_leaves_no_candidates_and_the_next_looks_at_nothing(
    store: Store, clock: ManualClock
) -> None:
    shared = os.urandom(5000)
    for name in ("a", "b"):
        files = {"shared.bin": shared, f"{name}.bin": os.urandom(5000)}
        await store.release(await store.acquire(request(name), MemoryUpstream(files), "h"))
    assert await store.db.read(candidates) == 3  # every new blob, until a collection has seen it
    assert await store.gc() == 0
    assert await store.db.read(candidates) == 0

    entry_a = next(e for e in await store.entries() if e.source == "mem://a")
    await store.delete(entry_a.id)  # collects a.bin; shared.bin is still b's
    assert await store.db.read(candidates) == 0
    looked_at, unreferenced = await store.db.run(lambda c: blob_index.take_gc_candidates(c, 10))
    assert (looked_at, unreferenced) == (0, [])
    remaining = {p.name for p in store.paths.blobs.glob("*/*")}
    assert {hashlib.sha256(shared).hexdigest()[2:]} < remaining
    assert len(remaining) == 2
    assert await store.db.read(blob_index.usage) == (10_000, 2)


async def test_a_blob_whose_entry_went_before_it_was_linked_is_collected(store: Store) -> None:
    data = os.urandom(3000)
    digest = hashlib.sha256(data).hexdigest()
    store.paths.blob(digest).parent.mkdir(parents=True, exist_ok=True)
    store.paths.blob(digest).write_bytes(data)
    await store.db.run(lambda c: blob_index.add_blob(c, digest, len(data), 0.0, []))
    assert await store.db.read(blob_index.usage) == (3000, 1)
    assert await store.gc() == 1
    assert not store.paths.blob(digest).exists()
    assert await store.db.read(blob_index.usage) == (0, 0)


async def test_a_store_made_before_the_bookkeeping_is_migrated_and_its_orphans_collected(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> None:
    settings = store_settings()
    settings.path.mkdir(parents=True)
    kept, orphan = os.urandom(4000), os.urandom(6000)
    kept_sha, orphan_sha = (hashlib.sha256(d).hexdigest() for d in (kept, orphan))
    old = Database(settings.path / "index.sqlite", store_index.MIGRATIONS[:1], name="old")
    await old.open()

    def seed(conn: sqlite3.Connection) -> None:
        conn.execute(
            """INSERT INTO entries (id, request_key, type, source, request, state, created_at,
               downloaded_at) VALUES ('e1', 'k', 'test', 'mem://old', '{}', 'ready', 0, 0)"""
        )
        for digest, size in ((kept_sha, 4000), (orphan_sha, 6000)):
            conn.execute(
                "INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, 0)", (digest, size)
            )
        conn.execute("INSERT INTO files VALUES ('e1', 'kept.bin', 4000, ?, 0)", (kept_sha,))

    await old.run(seed)
    await old.close()
    for digest, data in ((kept_sha, kept), (orphan_sha, orphan)):
        path = settings.path / "blobs" / "sha256" / digest[:2] / digest[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o444)

    async with Store.open(settings, clock=clock) as store:
        assert await store.db.read(blob_index.usage) == (10_000, 2)
        assert await store.gc() == 1
        assert await store.db.read(blob_index.usage) == (4000, 1)
        assert store.paths.blob(kept_sha).exists()
        assert not store.paths.blob(orphan_sha).exists()


async def test_an_index_newer_than_the_daemon_is_refused_and_left_as_it_is(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> None:
    settings = store_settings()
    async with Store.open(settings, clock=clock):
        pass
    index_file = settings.path / "index.sqlite"
    with contextlib.closing(sqlite3.connect(index_file)) as conn:
        conn.execute(f"PRAGMA user_version = {len(store_index.MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this daemon knows"):
        async with Store.open(settings, clock=clock):
            pass
    assert index_file.exists()
    assert not list(settings.path.glob("index.sqlite.damaged-*"))
