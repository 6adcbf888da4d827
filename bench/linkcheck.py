"""The link emulator's self-check: does each profile give what it promises, on this machine?

    python -m bench.linkcheck [--profile cdn,far] [--quick]

Through the link (bench/link.py), from the bench's S3 host, with `curl` as the client (C, so
the client's own cost is small):
- the first byte of a small object on a new connection (expected: the handshake's RTTs plus
  one) and on a reused one (expected: one RTT);
- one connection's rate, from its first byte to its last (expected: its cap, less what TCP's
  slow start costs a new connection: `_expected_rate` plays the model's rounds);
- N connections at once (expected: min(N x that, aggregate)), for N up to past the point
  where the aggregate binds.
Each figure is given with its expectation and their ratio: the bench's other figures on a
profile are only as good as these.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from typing import Any

from bench.common import link, peers
from bench.profiles import Profile, profile

MB = 1024 * 1024
BUCKET = "bench"


def _curl(urls: list[str], write_out: str) -> list[list[float]]:
    """One curl over `urls` (one connection, reused); its -w figures per URL."""
    args = ["curl", "-s", "-f"]
    for url in urls:
        args += ["-o", "/dev/null", url]
    out = subprocess.run([*args, "-w", write_out + "\\n"], capture_output=True, text=True)
    out.check_returncode()
    return [[float(v) for v in line.split()] for line in out.stdout.splitlines() if line]


def _parallel(url: str, connections: int) -> tuple[float, list[float]]:
    """`connections` curls at once: their total rate (bytes over the span from the first
    first byte to the last last byte) and each one's rate after its first byte."""
    processes = [
        subprocess.Popen(
            [
                "curl",
                "-s",
                "-f",
                "-o",
                "/dev/null",
                "-w",
                "%{time_starttransfer} %{time_total} %{size_download}",
                url,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(connections)
    ]
    figures = [[float(v) for v in p.communicate()[0].split()] for p in processes]
    first = min(f[0] for f in figures)
    total = sum(f[2] for f in figures)
    span = max(f[1] for f in figures) - first
    return total / span, [f[2] / (f[1] - f[0]) for f in figures]


def _expected_rate(profile: Profile, size: int) -> float:
    """Bytes per second of one new connection moving `size` bytes under the link's model:
    each RTT a window's worth (at most the cap's), the window doubling (slow start)."""
    elapsed, sent, window = 0.0, 0, profile.initial_window
    per_rtt = profile.per_connection * profile.rtt
    while True:
        batch = min(window, per_rtt)
        if sent + batch >= size:
            return size / (elapsed + (size - sent) / batch * profile.rtt)
        sent, elapsed = sent + int(batch), elapsed + profile.rtt
        window = min(profile.receive_window, 2 * window)


def check(profile_name: str, quick: bool) -> dict[str, Any]:
    link_profile = profile(profile_name)
    seconds = 2 if quick else 5
    size = int(link_profile.per_connection * seconds)
    spec = {"bucket": BUCKET, "objects": {"check/big": [size, 1], "check/tiny": [16, 2]}}
    with link(profile_name) as wan, peers(spec, wan) as servers:
        assert wan is not None
        base = f"{servers['static']}/{BUCKET}/check"
        new, reused = _curl([f"{base}/tiny", f"{base}/tiny"], "%{time_starttransfer}")
        counts = sorted(
            {1, 4, int(link_profile.aggregate // link_profile.per_connection), 32 if quick else 48}
        )
        rates = {}
        for count in counts:
            total, each = _parallel(f"{base}/big", count)
            expected = min(count * _expected_rate(link_profile, size), link_profile.aggregate)
            rates[str(count)] = {
                "mib_s": round(total / MB, 1),
                "expected_mib_s": round(expected / MB, 1),
                "ratio": round(total / expected, 3),
                "slowest_connection_mib_s": round(min(each) / MB, 1),
            }
        stats = wan.stats()
    handshake = (link_profile.handshake_rtts + 1) * link_profile.rtt
    return {
        "profile": profile_name,
        "first_byte_new_connection_ms": {
            "measured": round(new[0] * 1000, 1),
            "expected": round(handshake * 1000, 1),
            "ratio": round(new[0] / handshake, 3),
        },
        "first_byte_reused_connection_ms": {
            "measured": round(reused[0] * 1000, 1),
            "expected": round(link_profile.rtt * 1000, 1),
            "ratio": round(reused[0] / link_profile.rtt, 3),
        },
        "one_connection_mib_s": rates["1"],
        "connections": rates,
        "cap_mib_s": round(link_profile.per_connection / MB, 1),
        "relay_cpu_seconds_per_gib": round(
            stats["cpu_seconds"] / (stats["listeners"]["static"]["bytes_down"] / 1024**3), 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="cdn,far")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for name in args.profile.split(","):
        print(json.dumps(check(name, args.quick), indent=1), flush=True)


if __name__ == "__main__":
    main()
