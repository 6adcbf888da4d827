"""A WAN-like link between the tools measured and their upstreams, as a TCP relay.

    python -m bench.link PROFILE NAME [NAME ...]

prints one JSON line `{"NAME": "http://127.0.0.1:PORT", ...}` (a listener per upstream), then
reads lines: `{"NAME": "HOST:PORT", ...}` says where listeners forward (connections wait until
theirs is known: the two steps let an upstream advertise its proxied address, as the hub does
in its LFS redirects); `stats` is answered with one JSON line of counters; end of input ends.

Why a userspace relay: this kernel has no `netem` (TESTBED.md), and `tc tbf` can only cap a
whole interface, not each connection as a CDN does. The aggregate cap is a pacer here too, not
a tbf: a tbf would need the upstreams behind a veth in a network namespace of their own, and
one shared pacer does the same while everything stays on loopback. Relaying bytes, not HTTP,
keeps the model honest for every client (huggingface_hub, aria2c, s5cmd, dockerd) without
knowing their protocol. How the link treats each connection, in each direction:

- propagation: bytes arrive `rtt / 2` after they leave, so a request and its answer cost one
  RTT, however small;
- set-up: TCP's SYN/SYN-ACK and TLS 1.3's round trip (HTTPS, as a CDN speaks it) mean a new
  connection's first bytes leave `handshake_rtts` RTTs after connect(); our clients' connect()
  returns at once on loopback, so their first bytes wait here instead;
- window: at most `cwnd` bytes unacknowledged, acknowledgements coming back one RTT after a
  byte leaves; `cwnd` starts at 10 segments and grows by what is acknowledged (slow start:
  the link drops nothing, so it never leaves it) up to the receive window; a sender idle for
  an RTO halves it per RTO, back to 10 segments at most (Linux's slow start after idle);
- rate: a connection's bytes are paced at its cap, and all connections' at the aggregate cap,
  by one pacer each (generic cell rate: a burst of 20 ms of the rate, then the rate; the
  burst also absorbs the relay's own timer lateness on a busy machine).

The relay runs in its own process, so its pacing does not share a GIL or an event loop with
the daemon, the tools or the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.profiles import Profile, profile

MiB = 1024 * 1024
SLICE = 256 * 1024
"""Bytes released at a time (one socket read at most, as asyncio reads): at 10 MiB/s,
25 ms, small against the RTTs modelled; larger slices cost the relay fewer timers."""
QUEUE_HIGH, QUEUE_LOW = 2 * MiB, 1 * MiB
"""Bytes waiting in a lane beyond which reading its source pauses (the sender's buffer)."""


class _Pacer:
    """A rate with a small burst, as reservations on a virtual clock (GCRA)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.tolerance = burst / rate
        self.free_at = 0.0  # when everything reserved so far has gone out

    def earliest(self, now: float) -> float:
        return max(now, self.free_at - self.tolerance)

    def take(self, start: float, count: int) -> None:
        self.free_at = max(self.free_at, start) + count / self.rate


@dataclass
class Counters:
    """What one listener carried, for the report's 'which server served what'."""

    connections: int = 0
    open: int = 0
    used: int = 0  # connections that carried bytes down since the last stats()
    epoch: int = 0
    first_at: float = 0.0  # when bytes first and last came down since the last stats()
    last_at: float = 0.0
    bytes_down: int = 0  # upstream to client
    bytes_up: int = 0

    def carried(self, lane: _Lane, count: int) -> None:
        if not lane.down:
            self.bytes_up += count
            return
        self.bytes_down += count
        self.last_at = time.monotonic()  # the clock of asyncio's loop
        self.first_at = self.first_at or self.last_at
        if lane.epoch != self.epoch:
            lane.epoch = self.epoch
            self.used += 1


@dataclass
class _Lane:
    """One direction of one connection: a queue, a window, a pacer, a delivery line."""

    link: Link
    aggregate: _Pacer
    not_before: float  # the handshake: nothing leaves earlier
    down: bool
    counters: Counters
    source: asyncio.Transport | None = None
    dest: asyncio.Transport | None = None
    queue: deque[memoryview] = field(default_factory=deque)
    queued: int = 0
    eof: bool = False
    cwnd: int = 0
    inflight: int = 0
    acks: deque[tuple[float, int]] = field(default_factory=deque)
    last_sent: float = 0.0
    deliveries: deque[tuple[float, memoryview | bytes | None]] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    writable: asyncio.Event = field(default_factory=asyncio.Event)
    due: asyncio.Event = field(default_factory=asyncio.Event)
    paused: bool = False
    epoch: int = -1

    def __post_init__(self) -> None:
        profile = self.link.profile
        self.cwnd = profile.initial_window
        burst = max(SLICE, profile.per_connection * 0.02)
        self.pacer = _Pacer(profile.per_connection, burst)
        self.writable.set()

    def push(self, data: bytes) -> None:
        self.queue.append(memoryview(data))  # sliced without copies as it is released
        self.queued += len(data)
        self.ready.set()
        if self.queued > QUEUE_HIGH and not self.paused and self.source is not None:
            self.paused = True
            self.source.pause_reading()

    def push_eof(self) -> None:
        self.eof = True
        self.ready.set()

    def _take(self, count: int) -> memoryview | bytes:
        pieces, left = [], count
        while left:
            head = self.queue[0]
            if len(head) <= left:
                pieces.append(self.queue.popleft())
                left -= len(head)
            else:
                pieces.append(head[:left])
                self.queue[0] = head[left:]
                left = 0
        self.queued -= count
        if self.paused and self.queued < QUEUE_LOW and self.source is not None:
            self.paused = False
            self.source.resume_reading()
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _acknowledge(self, now: float) -> None:
        """Take back what the far end has acknowledged by `now`; slow start grows the window
        by as much; an idle sender's window decays first."""
        profile = self.link.profile
        idle = now - self.last_sent
        if not self.inflight and self.last_sent and idle > profile.rto:
            self.cwnd = max(profile.initial_window, self.cwnd >> int(idle / profile.rto))
        while self.acks and self.acks[0][0] <= now:
            _, count = self.acks.popleft()
            self.inflight -= count
            self.cwnd = min(profile.receive_window, self.cwnd + count)

    async def send(self) -> None:
        """Release queued bytes as the window, the pacers and the handshake allow."""
        loop = asyncio.get_running_loop()
        one_way = self.link.profile.rtt / 2
        while True:
            await self.ready.wait()
            if not self.queue:
                if self.eof:
                    last = self.deliveries[-1][0] if self.deliveries else loop.time()
                    self.deliveries.append((last, None))
                    self.due.set()
                    return
                self.ready.clear()
                continue
            await self.writable.wait()
            now = loop.time()
            self._acknowledge(now)
            room = self.cwnd - self.inflight
            if room <= 0:
                await asyncio.sleep(max(0.0, self.acks[0][0] - now))
                continue
            count = min(SLICE, room, self.queued)
            data = self._take(count)
            start = max(self.not_before, self.pacer.earliest(now), self.aggregate.earliest(now))
            self.pacer.take(start, count)
            self.aggregate.take(start, count)
            arrival = start + count / self.pacer.rate + one_way
            self.inflight += count
            self.acks.append((arrival + one_way, count))
            self.last_sent = start
            self.deliveries.append((arrival, data))
            self.due.set()
            if start > now:
                await asyncio.sleep(start - now)

    async def deliver(self) -> None:
        """Write each slice when it arrives at the far end, in order; then the end."""
        loop = asyncio.get_running_loop()
        while True:
            if not self.deliveries:
                self.due.clear()
                await self.due.wait()
                continue
            wait = self.deliveries[0][0] - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            _arrival, data = self.deliveries.popleft()
            assert self.dest is not None
            if data is None:
                if self.dest.can_write_eof() and not self.dest.is_closing():
                    self.dest.write_eof()
                return
            if not self.dest.is_closing():
                self.dest.write(data)
            self.counters.carried(self, len(data))


class _End(asyncio.Protocol):
    """One socket of a relayed connection: what it reads goes into `into`, and its write
    buffer's back-pressure holds `out` (the lane that writes to it)."""

    def __init__(self, into: _Lane, out: _Lane, closed: asyncio.Event) -> None:
        self.into, self.out, self.closed = into, out, closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.into.source = transport
        self.out.dest = transport

    def data_received(self, data: bytes) -> None:
        self.into.push(data)

    def eof_received(self) -> bool:
        self.into.push_eof()
        return True  # half-closed: the other direction may still be talking

    def pause_writing(self) -> None:
        self.out.writable.clear()

    def resume_writing(self) -> None:
        self.out.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.into.push_eof()
        self.closed.set()


class Link:
    """Listeners that relay to their upstreams through one profile's link."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        burst = max(SLICE, profile.aggregate * 0.02)
        self.down = _Pacer(profile.aggregate, burst)
        self.up = _Pacer(profile.aggregate, burst)
        self.counters: dict[str, Counters] = {}
        self.targets: dict[str, tuple[str, int]] = {}
        self._known: dict[str, asyncio.Event] = {}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def listen(self, name: str) -> str:
        """A listener for `name` on a free loopback port; its URL."""
        self.counters[name] = Counters()
        self._known[name] = asyncio.Event()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Accepted(self, name), "127.0.0.1", 0)
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def forward(self, targets: dict[str, str]) -> None:
        """Where listeners forward (`HOST:PORT` by name); connections accepted before wait."""
        for name, address in targets.items():
            host, _, port = address.rpartition(":")
            self.targets[name] = (host, int(port))
            self._known[name].set()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def relay(self, name: str, client: _Accepted) -> None:
        """Connect upstream and run both lanes until both sides are done."""
        counters = self.counters[name]
        counters.connections, counters.open = counters.connections + 1, counters.open + 1
        closed = asyncio.Event()
        upstream: asyncio.BaseTransport | None = None
        watch: asyncio.Future[None] | None = None
        try:
            await self._known[name].wait()
            host, port = self.targets[name]
            loop = asyncio.get_running_loop()
            upstream, _ = await loop.create_connection(
                lambda: _End(client.down, client.up, closed), host, port
            )
            lanes = (client.up.send, client.up.deliver, client.down.send, client.down.deliver)
            tasks = [asyncio.ensure_future(lane()) for lane in lanes]
            watch = asyncio.ensure_future(self._watch(closed, client, tasks))
            await asyncio.gather(*tasks, return_exceptions=True)
        except OSError:
            pass  # the upstream refused: the client sees its connection close
        finally:
            counters.open -= 1
            if watch is not None:
                watch.cancel()
            if upstream is not None:
                upstream.close()
            if client.transport is not None:
                client.transport.close()

    async def _watch(self, closed: asyncio.Event, client: _Accepted, tasks: list[Any]) -> None:
        """Once the client has gone and the upstream has had its chance to end too (a
        half-close it ignores, a reset), stop relaying."""
        await client.closed.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), 2 * self.profile.rtt + 1)
        await asyncio.sleep(self.profile.rtt)
        for task in tasks:
            task.cancel()

    def stats(self) -> dict[str, Any]:
        """Counters so far; `used` and `busy_seconds` (first byte down to last, on any
        listener) since the last call: one contender's run."""
        listeners = {name: asdict(c) for name, c in self.counters.items()}
        busy = [c for c in self.counters.values() if c.first_at]
        span = max((c.last_at for c in busy), default=0) - min(
            (c.first_at for c in busy), default=0
        )
        for counters in self.counters.values():
            counters.used, counters.epoch = 0, counters.epoch + 1
            counters.first_at = counters.last_at = 0.0
        cpu = round(time.process_time(), 2)  # the relay's own cost, beside the tools'
        return {
            "profile": asdict(self.profile),
            "listeners": listeners,
            "busy_seconds": round(span, 3),
            "cpu_seconds": cpu,
        }

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Accepted(_End):
    """The client's side of one relayed connection: its lanes, and the relay it starts."""

    def __init__(self, link: Link, name: str) -> None:
        self.link, self.name = link, name
        self.transport: asyncio.Transport | None = None
        now = asyncio.get_running_loop().time()
        counters = link.counters[name]
        handshake = now + link.profile.handshake_rtts * link.profile.rtt
        self.up = _Lane(link, link.up, handshake, False, counters)
        self.down = _Lane(link, link.down, now, True, counters)
        super().__init__(self.up, self.down, asyncio.Event())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        super().connection_made(transport)
        self.link._spawn(self.link.relay(self.name, self))


async def _main(profile: Profile, names: list[str]) -> None:
    link = Link(profile)
    urls = {name: await link.listen(name) for name in names}
    print(json.dumps(urls), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"stats":
            print(json.dumps(link.stats()), flush=True)
        elif line.strip():
            link.forward(json.loads(line))
    await link.close()


def main() -> None:
    name, *names = sys.argv[1:]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(profile(name), names))


if __name__ == "__main__":
    main()
