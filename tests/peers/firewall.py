"""What of the fence the host's firewall holds: tests that put it up check it is gone after."""

from __future__ import annotations

import subprocess


def fence_rules() -> list[str]:
    """Every line of the host's firewall that names the fence (IPv4 and IPv6)."""
    found = []
    for command in ("iptables-save", "ip6tables-save"):
        saved = subprocess.run([command], capture_output=True, text=True, check=False).stdout
        found += [line for line in saved.splitlines() if "NOSANA-CACHE" in line]
    return found
