"""Random sequences of acquire / release / pin / unpin / time / sweep keep the invariants:

- every ready entry has every blob, and its view links exactly those blobs;
- after a sweep no unreferenced blob survives;
- the usage the index reports is the bytes on disk;
- nothing pinned or leased is ever deleted; no temp file outlives its download.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import sqlite3
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from daemon.errors import InsufficientSpace
from daemon.settings import StoreSettings
from daemon.store import EntryState, Lease, Store, blob_index
from daemon.util.clock import ManualClock
from tests.unit.store.upstream import MemoryUpstream, request

T = TypeVar("T")
NAMES = ["a", "b", "c"]
CONTENTS = [b"shared", b"alpha", b"beta", b"gamma" * 100, b""]


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.root = Path(tempfile.mkdtemp(prefix="store-prop-"))
        self.clock = ManualClock()
        settings_ = StoreSettings(path=self.root, ttl=3600, min_free=0, max_size=4000)
        self.store = Store(settings_, clock=self.clock)
        self.run(self.store.start())
        self.upstreams = {
            n: MemoryUpstream({"f": b"shared", f"{n}.txt": n.encode()}) for n in NAMES
        }
        self.leases: list[Lease] = []
        self.pins: set[str] = set()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    @rule(name=st.sampled_from(NAMES))
    def acquire(self, name: str) -> None:
        # A refusal for space is an allowed outcome; any other error fails the test.
        with contextlib.suppress(InsufficientSpace):
            self.leases.append(
                self.run(self.store.acquire(request(name), self.upstreams[name], "h"))
            )

    @rule(
        name=st.sampled_from(NAMES),
        content=st.sampled_from(CONTENTS),
        path=st.sampled_from(["f", "g/h"]),
    )
    def upstream_changes(self, name: str, content: bytes, path: str) -> None:
        upstream = self.upstreams[name]
        files = {k: v for k, v in upstream.files.items() if k != path}
        if path == "g/h" or "g" not in files:
            files[path] = content
        upstream.files = files
        upstream.version = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()

    @precondition(lambda self: self.leases)
    @rule(index=st.integers(min_value=0, max_value=100))
    def release(self, index: int) -> None:
        lease = self.leases.pop(index % len(self.leases))
        self.run(self.store.release(lease))

    @rule(pin=st.booleans(), index=st.integers(min_value=0, max_value=100))
    def toggle_pin(self, pin: bool, index: int) -> None:
        entries = [e for e in self.run(self.store.entries()) if e.state == EntryState.READY]
        if not entries:
            return
        entry = entries[index % len(entries)]
        if pin:
            self.run(self.store.pin(entry.id, "market"))
            self.pins.add(entry.id)
        else:
            self.run(self.store.unpin(entry.id, "market"))
            self.pins.discard(entry.id)

    @rule(hours=st.floats(min_value=0, max_value=3))
    def time_passes(self, hours: float) -> None:
        self.clock.advance(hours * 3600)

    @rule()
    def sweep(self) -> None:
        self.run(self.store.sweep())
        unreferenced = self.run(self.store.db.read(_unreferenced_blobs))
        assert unreferenced == []

    @invariant()
    def usage_is_the_sum_of_the_blobs(self) -> None:
        kept = self.run(self.store.db.read(blob_index.usage))
        counted = self.run(
            self.store.db.read(
                lambda c: tuple(
                    c.execute("SELECT coalesce(sum(size), 0), count(*) FROM blobs").fetchone()
                )
            )
        )
        assert kept == counted

    @invariant()
    def held_entries_exist(self) -> None:
        ids = {e.id for e in self.run(self.store.entries())}
        assert {lease.entry.id for lease in self.leases} <= ids
        assert self.pins <= ids

    @invariant()
    def ready_entries_are_whole(self) -> None:
        for entry in self.run(self.store.entries([EntryState.READY])):
            view = self.store.views.path(entry.id)
            for file in self.run(self.store.files(entry.id)):
                assert file.sha256 is not None
                blob = self.store.paths.blob(file.sha256)
                assert blob.exists()
                assert (view / file.path).stat().st_ino == blob.stat().st_ino
                assert hashlib.sha256(blob.read_bytes()).hexdigest() == file.sha256

    @invariant()
    def usage_is_what_is_on_disk(self) -> None:
        used, count = self.run(self.store.db.read(blob_index.usage))
        files = list(self.store.paths.blobs.glob("*/*"))
        assert count == len(files)
        assert used == sum(p.stat().st_size for p in files)
        assert list(self.store.paths.tmp.iterdir()) == []

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.root, ignore_errors=True)


StoreMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoreInvariants = StoreMachine.TestCase


def _unreferenced_blobs(conn: sqlite3.Connection) -> list[str]:
    """Every blob no file points at, by a scan of them all: what garbage collection, which
    looks only at its candidates, must leave empty."""
    rows = conn.execute(
        """SELECT b.sha256 FROM blobs b
           WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = b.sha256)"""
    )
    return [r[0] for r in rows]
