"""The links the bench measures on, each named in the report (issue 19).

`cdn` is a CDN nearby, `far` one on another continent; `loopback` is no link at all (the tools
reach the upstreams directly). Each caps every connection, as CDNs do, and the host's link as
a whole; bench/link.py emulates them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

MiB = 1024 * 1024
SEGMENT = 1448


@dataclass(frozen=True)
class Profile:
    """One kind of link, named in the report."""

    name: str
    rtt: float  # seconds
    per_connection: float  # bytes per second, each direction
    aggregate: float  # bytes per second over all connections, each direction
    handshake_rtts: int = 2  # TCP, then TLS 1.3
    initial_window: int = 10 * SEGMENT  # RFC 6928, Linux's default
    receive_window: int = 6 * MiB  # Linux's tcp_rmem maximum

    @property
    def rto(self) -> float:
        """Linux's retransmission timeout on a steady path: the RTT plus its 200 ms floor."""
        return self.rtt + 0.2


PROFILES = {
    "cdn": Profile("cdn", rtt=0.040, per_connection=25 * MiB, aggregate=400 * MiB),
    "far": Profile("far", rtt=0.150, per_connection=10 * MiB, aggregate=200 * MiB),
}


def profile(name: str) -> Profile:
    """A profile by name; `cdn@0.25` is cdn with its rates scaled by 0.25 and its RTTs kept,
    for a machine whose cores cannot feed the full rates (the report names it so)."""
    base, _, scale = name.partition("@")
    found = PROFILES[base]
    if not scale:
        return found
    k = float(scale)
    return replace(
        found, name=name, per_connection=found.per_connection * k, aggregate=found.aggregate * k
    )


SETUP_RTTS = {"hf": 6, "s3": 3}
"""Round trips before the first byte of content, for a client that wastes none. HF: the hub's
handshake, the revision (with `?blobs=true` it lists every file too), a resolve's redirect,
the content host's handshake. S3: the handshake and the listing (the data connections'
handshakes can overlap the listing, the host being known). The first GET's round trip is the
first round of `best_seconds`."""


def best_seconds(link: Profile, total: int, setup_rtts: int, connections: int) -> float:
    """The least time any client needs for `total` bytes over `connections` opened at once
    after `setup_rtts` round trips, on this link as bench/link.py models it: each
    connection's window starts at `initial_window` and grows by what is acknowledged (slow
    start, never left: the link drops nothing), and sends at most its window or its cap's
    worth a round trip; all of them together at most the aggregate cap's worth.

    This is the ceiling for `fraction_of_link`: set-up and slow start are paid by every
    client, however it is written."""
    window = [float(link.initial_window)] * connections
    per_round = link.per_connection * link.rtt
    left, rounds = float(total), 0.0
    while left > 0:
        sends = [min(w, per_round, link.receive_window) for w in window]
        scale = min(1.0, link.aggregate * link.rtt / sum(sends))
        sent = sum(sends) * scale
        if sent >= left:
            rounds += left / sent
            break
        left -= sent
        rounds += 1
        window = [w + s * scale for w, s in zip(window, sends, strict=True)]
    return (setup_rtts + rounds) * link.rtt
