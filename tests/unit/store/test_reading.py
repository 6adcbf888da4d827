"""Reading a file while its blob is still being written: bytes as they land, never ahead of
the disk, never all of a file that failed its digest, one upstream fetch for every reader."""

from __future__ import annotations

import asyncio
import os

import pytest

from daemon.errors import Conflict, StoreError, UpstreamIntegrityError
from daemon.store import FileStream, Store
from tests.unit.store.upstream import MemoryUpstream, request

MB = 1024 * 1024
GUARD = 30.0
"""Seconds a step may take before the test fails instead of hanging (never reached when the
code is right: every wait below is on an event the test controls)."""


async def read(stream: FileStream, start: int, end: int) -> bytes:
    return b"".join([chunk async for chunk in stream.chunks(start, end)])


async def test_a_reader_gets_the_written_bytes_while_the_rest_is_held_upstream(
    store: Store,
) -> None:
    data = os.urandom(3 * MB)
    release = asyncio.Event()
    upstream = MemoryUpstream({"w.bin": data}, holds={"w.bin": (MB, release)})
    stream = await store.open_file(request("live"), upstream, upstream.spec("w.bin"), "hub:1")
    try:
        assert not stream.hit
        assert stream.growing is not None
        async with asyncio.timeout(GUARD):
            head = await read(stream, 0, MB)
        assert head == data[:MB]
        assert not stream.growing.ended  # upstream still holds the rest
        inside = await read(stream, 4096, 8192)  # a range inside what is written: at once
        assert inside == data[4096:8192]
        release.set()
        async with asyncio.timeout(GUARD):
            assert await read(stream, MB, len(data)) == data[MB:]
        entry = await store.get(stream.entry.id)
        assert entry.leases == 1
    finally:
        await stream.close()
    assert (await store.get(stream.entry.id)).leases == 0
    assert upstream.fetched["w.bin"] == 1


async def test_a_range_beyond_what_is_written_waits_for_it(store: Store) -> None:
    data = os.urandom(2 * MB)
    release = asyncio.Event()
    upstream = MemoryUpstream({"w.bin": data}, holds={"w.bin": (MB, release)})
    stream = await store.open_file(request("later"), upstream, upstream.spec("w.bin"), "hub:1")
    try:
        tail = asyncio.ensure_future(read(stream, MB + 10, MB + 20))
        async with asyncio.timeout(GUARD):
            await read(stream, 0, MB)  # everything before the hold is there...
        assert not tail.done()  # ...but not what comes after it
        release.set()
        async with asyncio.timeout(GUARD):
            assert await tail == data[MB + 10 : MB + 20]
    finally:
        await stream.close()


async def test_the_last_byte_of_a_file_that_fails_its_digest_is_never_served(
    store: Store,
) -> None:
    data = os.urandom(2 * MB)
    upstream = MemoryUpstream({"bad.bin": data}, wrong_bytes={"bad.bin"})
    stream = await store.open_file(request("bad"), upstream, upstream.spec("bad.bin"), "hub:1")
    got = bytearray()

    async def drain() -> None:
        async with asyncio.timeout(GUARD):
            async for chunk in stream.chunks(0, len(data)):
                got.extend(chunk)

    with pytest.raises(UpstreamIntegrityError, match="sha256"):
        await drain()
    await stream.close()
    assert len(got) < len(data)
    assert list(store.paths.blobs.glob("*/*")) == []


async def test_readers_of_one_cold_file_share_one_upstream_fetch(store: Store) -> None:
    data = os.urandom(2 * MB)
    release = asyncio.Event()
    upstream = MemoryUpstream({"w.bin": data}, holds={"w.bin": (MB // 2, release)})
    spec = upstream.spec("w.bin")
    streams = [await store.open_file(request("herd"), upstream, spec, f"hub:{i}") for i in range(5)]
    try:
        release.set()
        async with asyncio.timeout(GUARD):
            bodies = await asyncio.gather(*(read(s, 0, len(data)) for s in streams))
        assert all(body == data for body in bodies)
    finally:
        for stream in streams:
            await stream.close()
    assert upstream.fetched["w.bin"] == 1
    assert upstream.resolve_calls == 1


async def test_a_ready_file_is_a_hit_and_held_while_it_is_read(store: Store) -> None:
    upstream = MemoryUpstream({"small.json": b'{"a": 1}', "w.bin": os.urandom(MB)})
    first = await store.open_file(request("hit"), upstream, upstream.spec("small.json"), "hub:1")
    assert await read(first, 0, 8) == b'{"a": 1}'
    await first.close()
    again = await store.open_file(request("hit"), upstream, upstream.spec("w.bin"), "hub:2")
    try:
        assert again.hit
        assert again.growing is None
        assert await read(again, 10, 20) == upstream.files["w.bin"][10:20]
        with pytest.raises(Conflict, match="in use"):
            await store.delete(again.entry.id)
    finally:
        await again.close()
    assert upstream.resolve_calls == 1
    await store.delete(again.entry.id)


async def test_a_failed_fetch_is_the_readers_error_and_the_next_one_fetches_again(
    store: Store,
) -> None:
    upstream = MemoryUpstream({"w.bin": os.urandom(MB)}, fail_after={"w.bin": 0})
    stream = await store.open_file(request("fail"), upstream, upstream.spec("w.bin"), "h")
    with pytest.raises(StoreError, match="ConnectionResetError"):
        async with asyncio.timeout(GUARD):
            await read(stream, 0, MB)
    await stream.close()
    in_flight = store.fetcher.get(request("fail").request_key)
    if in_flight is not None:  # the reader learnt of the failure before the fetch ended
        with pytest.raises(ConnectionResetError):
            await in_flight.task
    assert (await store.get(stream.entry.id)).state == "failed"
    again = await store.open_file(request("fail"), upstream, upstream.spec("w.bin"), "h")
    async with asyncio.timeout(GUARD):  # the next reader fetches afresh
        assert await read(again, 0, MB) == upstream.files["w.bin"]
    await again.close()
    assert upstream.fetched["w.bin"] == 2
