"""Hosts another program connects to (the Docker engine's pulls): every address must be public."""

from __future__ import annotations

import pytest

from daemon.errors import UnsafeUpstream
from daemon.sources.netguard import check_host

PRIVATE = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "::1",
    "[::1]",
    "::ffff:127.0.0.1",  # v4-mapped loopback
    "fe80::1",
    "fd12:3456::1",  # ULA
    "localhost",  # a name, resolved here (/etc/hosts)
]


@pytest.mark.parametrize("host", PRIVATE)
async def test_private_hosts_are_refused_naming_the_setting(host: str) -> None:
    with pytest.raises(UnsafeUpstream) as refused:
        await check_host(host, what="image x", allow_private=False)
    assert refused.value.message.startswith(f"image x: {host}")
    assert "security.allow_private_urls" in refused.value.message


@pytest.mark.parametrize("host", ["8.8.8.8", "2606:4700:4700::1111"])
async def test_public_literals_pass_without_a_lookup(host: str) -> None:
    await check_host(host, what="image x", allow_private=False)


async def test_a_name_that_does_not_resolve_is_left_to_the_engine() -> None:
    await check_host("no-such-host.invalid", what="image x", allow_private=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.0.0.1"])
async def test_allow_private_urls_lets_everything_through(host: str) -> None:
    await check_host(host, what="image x", allow_private=True)
