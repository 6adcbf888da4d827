"""Network-level cases that need an address this machine does not have: run in a namespace.

The SSRF guard must be shown refusing a redirect from a *public* address to a private one,
and a public-looking name that resolves to loopback. A public address cannot be reached from
a test bed that is loopback-only, so these cases run in a fresh network and mount namespace
(as root): only `lo`, with 203.0.114.1 (a global address) added to it, an /etc/hosts naming
`public.example` (that address) and `sneaky.example` (127.0.0.1), and a resolver at
127.0.0.1 where nothing listens, so unknown names fail at once and nothing leaves the box.
The cases themselves are `netns_cases.py`, run by pytest inside.
"""

from __future__ import annotations

from pathlib import Path

from tests.peers.netns import pytest_in_namespace

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_ADDRESS = "203.0.114.1"


def test_ssrf_redirects_and_dns_failures_inside_a_network_namespace(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        f"127.0.0.1 localhost sneaky.example\n{PUBLIC_ADDRESS} public.example\n::1 localhost\n"
    )
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    setup = (
        f"ip addr add {PUBLIC_ADDRESS}/32 dev lo; "
        f"mount --bind {hosts} /etc/hosts; mount --bind {resolv} /etc/resolv.conf;"
    )
    cases = ROOT / "tests/chaos/netns_cases.py"
    env = {"NETNS_PUBLIC_ADDRESS": PUBLIC_ADDRESS}
    result = pytest_in_namespace(cases, setup, env, timeout=300, show=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout, result.stdout
    assert "skipped" not in result.stdout, result.stdout
    print("\n".join(line for line in result.stdout.splitlines() if "fuzzed" in line))
