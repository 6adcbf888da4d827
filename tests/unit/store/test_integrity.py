"""Bad upstreams and bad disks: nothing corrupt is kept, nothing partial looks ready."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.errors import Conflict, UnsafeUpstream, UpstreamIntegrityError
from daemon.settings import StoreSettings
from daemon.store import Crc, EntryState, Expected, Store
from daemon.store.blobs import BlobPaths, Ingest, MemoryIngest
from daemon.util.clock import ManualClock
from tests.unit.store.upstream import MemoryUpstream, request


async def test_wrong_bytes_are_refused_and_nothing_is_stored(store: Store) -> None:
    upstream = MemoryUpstream({"ok": b"fine", "bad.bin": os.urandom(50_000)})
    upstream.wrong_bytes.add("bad.bin")
    with pytest.raises(UpstreamIntegrityError, match=r"bad\.bin: corrupt download: sha256"):
        await store.acquire(request("corrupt"), upstream, holder="h")
    bad_digest = hashlib.sha256(upstream.files["bad.bin"]).hexdigest()
    assert not store.paths.blob(bad_digest).exists()
    assert list(store.paths.tmp.iterdir()) == []
    [entry] = await store.entries()
    assert entry.state == EntryState.FAILED
    assert "corrupt download" in (entry.error or "")
    assert not store.views.path(entry.id).exists()


@pytest.mark.parametrize(
    "name",
    ["../x", "/etc/passwd", "a/../../b", "a//b", "./a", "", "a/\x00b", "x/" + "y" * 300],
)
async def test_hostile_names_are_refused_before_anything_is_written(
    store: Store, name: str
) -> None:
    upstream = MemoryUpstream({"fine.txt": b"ok", name: b"evil"})
    with pytest.raises(UnsafeUpstream, match="refused file name"):
        await store.acquire(request(f"hostile-{hash(name)}"), upstream, holder="h")
    assert upstream.fetched == {}
    assert await store.entries() == []
    assert not (store.settings.path / "etc").exists()


async def test_a_file_and_a_folder_of_the_same_name_clash(store: Store) -> None:
    upstream = MemoryUpstream({"model": b"file", "model/weights.bin": b"inside"})
    with pytest.raises(UnsafeUpstream, match=r"is also a file|also a folder"):
        await store.acquire(request("clash"), upstream, holder="h")


async def test_an_interrupted_download_resumes_from_where_it_stopped(store: Store) -> None:
    big = os.urandom(12 * 1024 * 1024)
    upstream = MemoryUpstream({"big.bin": big}, fail_after={"big.bin": 5 * 1024 * 1024})
    with pytest.raises(ConnectionResetError):
        await store.acquire(request("resume"), upstream, holder="h")
    assert len(list(store.paths.tmp.iterdir())) == 1  # kept for a resume
    lease = await store.acquire(request("resume"), upstream, holder="h")
    assert lease.view is not None
    assert (lease.view / "big.bin").read_bytes() == big
    first, second = upstream.ranges
    assert first == ("big.bin", 0, len(big))
    assert second == ("big.bin", 5 * 1024 * 1024, len(big))
    assert list(store.paths.tmp.iterdir()) == []


async def test_verify_finds_a_corrupt_blob_and_the_entry_is_fetched_again(
    store: Store, clock: ManualClock
) -> None:
    upstream = MemoryUpstream({"w.bin": os.urandom(20_000), "ok": b"ok"})
    lease = await store.acquire(request("scrub"), upstream, holder="h")
    await store.release(lease)
    digest = hashlib.sha256(upstream.files["w.bin"]).hexdigest()
    blob = store.paths.blob(digest)
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as handle:
        handle.write(b"rot")
    report = await store.verify()
    assert report.corrupt == [digest]
    assert report.entries_failed == [lease.entry.id]
    assert (await store.get(lease.entry.id)).state == EntryState.FAILED
    again = await store.acquire(request("scrub"), upstream, holder="h")
    assert again.entry.id == lease.entry.id
    assert upstream.fetched == {"w.bin": 2, "ok": 1}
    assert again.view is not None
    assert (again.view / "w.bin").read_bytes() == upstream.files["w.bin"]
    assert (await store.verify()).corrupt == []


async def test_delete_is_refused_while_pinned_or_in_use(store: Store) -> None:
    upstream = MemoryUpstream({"f": b"x"})
    lease = await store.acquire(request("del"), upstream, holder="h")
    with pytest.raises(Conflict, match="in use"):
        await store.delete(lease.entry.id)
    await store.release(lease)
    await store.pin(lease.entry.id, "market")
    with pytest.raises(Conflict, match="pinned by market"):
        await store.delete(lease.entry.id)
    await store.unpin(lease.entry.id, "market")
    await store.delete(lease.entry.id)
    assert await store.entries() == []
    assert list(store.paths.blobs.glob("*/*")) == []


async def test_restart_finds_truncated_and_orphan_blobs(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> None:
    """What a power cut can leave: a blob cut short, a file nobody recorded, a stray temp."""
    settings = store_settings()
    upstream = MemoryUpstream({"w.bin": os.urandom(50_000), "ok": b"ok"})
    async with Store.open(settings, clock=clock) as store:
        lease = await store.acquire(request("power"), upstream, holder="h")
        await store.release(lease)
        paths = store.paths
    truncated = paths.blob(hashlib.sha256(upstream.files["w.bin"]).hexdigest())
    os.chmod(truncated, 0o644)
    truncated.write_bytes(b"")
    orphan = paths.blob(hashlib.sha256(b"nobody").hexdigest())
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"nobody")
    (paths.tmp / "stray.part").write_bytes(b"half")
    async with Store.open(settings, clock=clock) as store:
        entry = await store.get(lease.entry.id)
        assert entry.state == EntryState.FAILED
        assert "missing from disk" in (entry.error or "")
        assert not orphan.exists()
        assert not truncated.exists()
        assert list(paths.tmp.iterdir()) == []
        again = await store.acquire(request("power"), upstream, holder="h")
        assert again.view is not None
        assert (again.view / "w.bin").read_bytes() == upstream.files["w.bin"]
        assert upstream.fetched == {"w.bin": 2, "ok": 1}


async def test_after_an_unclean_stop_blobs_written_since_the_checkpoint_are_rehashed(
    store_settings: Callable[..., StoreSettings], clock: ManualClock
) -> None:
    """Blobs are not fsynced one by one: a crash re-checks what the last checkpoint missed."""
    settings = store_settings()
    first = Store(settings, clock=clock)
    await first.start()
    old = MemoryUpstream({"old.bin": os.urandom(30_000)})
    await first.acquire(request("before-checkpoint"), old, holder="h")
    await first.checkpoint()
    new = MemoryUpstream({"new.bin": os.urandom(30_000)})
    lease = await first.acquire(request("after-checkpoint"), new, holder="h")
    await first.db.close()  # the process dies: no checkpoint, no clean mark
    for data in (new.files["new.bin"], old.files["old.bin"]):
        blob = first.paths.blob(hashlib.sha256(data).hexdigest())
        os.chmod(blob, 0o644)
        blob.write_bytes(b"\0" * len(data))  # what a power cut can leave: right size, no bytes
    async with Store.open(settings, clock=clock) as again:
        entry = await again.get(lease.entry.id)
        assert entry.state == EntryState.FAILED
        assert "unclean stop" in (entry.error or "")
        # Before the checkpoint: trusted (and found by `verify`, not by every start).
        ready = [e for e in await again.entries() if e.state == EntryState.READY]
        assert [e.source for e in ready] == ["mem://before-checkpoint"]
    async with Store.open(settings, clock=clock) as clean:
        assert (await clean.get(lease.entry.id)).state == EntryState.FAILED  # nothing re-checked


@pytest.mark.parametrize(
    ("algorithm", "check_value"),  # the standard check values: the CRC of b"123456789"
    [("CRC32", 0xCBF43926), ("CRC32C", 0xE3069283), ("CRC64NVME", 0xAE8B14860A799888)],
)
async def test_a_crc_upstream_keeps_is_checked(
    tmp_path: Path, algorithm: str, check_value: int
) -> None:
    paths = BlobPaths(tmp_path)
    paths.ensure()
    data = b"123456789"
    good = Ingest(paths, Expected(size=9, crc=Crc(algorithm, check_value)), name="f")
    await good.write(5, data[5:])  # out of order: the CRC follows the bytes in order
    await good.write(0, data[:5])
    assert await good.finish() == hashlib.sha256(data).hexdigest()
    bad = Ingest(paths, Expected(size=9, crc=Crc(algorithm, check_value ^ 1)), name="f")
    await bad.write(0, data)
    with pytest.raises(UpstreamIntegrityError, match=f"{algorithm} {check_value:x}, expected"):
        await bad.finish()
    bad.discard()
    small = MemoryIngest(Expected(size=9, crc=Crc(algorithm, check_value)), name="f")
    await small.write(0, data)
    assert small.finish()[0] == hashlib.sha256(data).hexdigest()
