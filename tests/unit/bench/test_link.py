"""The link emulator (bench/link.py) gives what its profile promises: the first byte after the
handshake's round trips and one more, each connection its cap, all of them the aggregate cap.

A scaled-down profile keeps each case near a second; the tolerances allow for a busy machine
(timers that wake late lower rates, never raise them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bench.link import Link
from bench.profiles import Profile

MiB = 1024 * 1024
PROFILE = Profile("test", rtt=0.05, per_connection=4 * MiB, aggregate=10 * MiB)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer each line `N` with N bytes, on the same connection."""
    while line := await reader.readline():
        left = int(line)
        while left:
            chunk = min(left, 256 * 1024)
            writer.write(b"x" * chunk)
            await writer.drain()
            left -= chunk
    writer.close()


@pytest.fixture
async def link() -> AsyncIterator[tuple[Link, str]]:
    upstream = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    relay = Link(PROFILE)
    url = await relay.listen("up")
    relay.forward({"up": f"127.0.0.1:{port}"})
    yield relay, url.removeprefix("http://")
    await relay.close()
    upstream.close()
    await upstream.wait_closed()


async def _fetch(address: str, sizes: list[int]) -> list[tuple[float, float, int]]:
    """On one connection, each size in turn: seconds to its first byte, to its last, and the
    bytes that came with the first (a rate from first byte to last leaves those out), all
    from the request; and at the end, when the last request started (on the loop's clock)."""
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    loop = asyncio.get_running_loop()
    times = []
    started = 0.0
    for size in sizes:
        started = loop.time()
        writer.write(f"{size}\n".encode())
        first, head = None, 0
        left = size
        while left:
            chunk = await reader.read(1024 * 1024)
            assert chunk, "the link closed early"
            if first is None:
                first, head = loop.time() - started, len(chunk)
            left -= len(chunk)
        assert first is not None
        times.append((first, loop.time() - started, head))
    writer.close()
    return [*times, (started, 0.0, 0)]


async def test_first_byte_costs_the_handshake_then_one_rtt(link: tuple[Link, str]) -> None:
    _relay, address = link
    (new, _, _), (reused, _, _), _ = await _fetch(address, [10, 10])
    handshake = (PROFILE.handshake_rtts + 1) * PROFILE.rtt
    assert handshake * 0.95 <= new <= handshake * 1.4
    assert PROFILE.rtt * 0.95 <= reused <= PROFILE.rtt * 1.5


async def test_one_connection_gets_its_cap_once_its_window_has_grown(
    link: tuple[Link, str],
) -> None:
    _relay, address = link
    size = 6 * MiB
    _warm, (first, last, head), _ = await _fetch(address, [MiB, size])  # the window grows
    rate = (size - head) / (last - first)
    assert 0.85 * PROFILE.per_connection <= rate <= 1.1 * PROFILE.per_connection


async def test_connections_together_get_the_aggregate_cap(link: tuple[Link, str]) -> None:
    relay, address = link
    size = 4 * MiB
    # Windows grown on a first MiB each, then 4 x 4 MiB/s would be 16: the aggregate binds.
    runs = await asyncio.gather(*[_fetch(address, [MiB, size]) for _ in range(4)])
    begun = min(started + first for (_, (first, _, _), (started, _, _)) in runs)
    ended = max(started + last for (_, (_, last, _), (started, _, _)) in runs)
    heads = sum(head for (_, (_, _, head), _) in runs)
    rate = (4 * size - heads) / (ended - begun)
    assert 0.85 * PROFILE.aggregate <= rate <= 1.05 * PROFILE.aggregate
    counters = relay.counters["up"]
    assert (counters.connections, counters.used) == (4, 4)
    assert counters.bytes_down == 4 * (size + MiB)
