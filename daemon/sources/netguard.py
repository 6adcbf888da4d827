"""No URL from a job definition may reach this host's private networks (SSRF).

A job author chooses S3 URLs; without this guard a job could make the daemon fetch from
`http://169.254.169.254/` (cloud credentials), `http://127.0.0.1:9810/` (this API) or the LAN.
The check happens where the address is actually used: a resolver for the session that serves
job-provided URLs refuses hosts whose addresses are not global, so a DNS answer cannot change
between the check and the connection. Literal IP addresses never reach a resolver, so they
are checked up front. Endpoints from the operator's config use the ordinary resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from ..errors import UnsafeUpstream

_ALLOWED_SCHEMES = {"http", "https"}


def is_public(address: str) -> bool:
    """Globally routable unicast (not private, loopback, link-local, CGNAT, multicast...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str | URL, *, allow_private: bool) -> URL:
    """The parsed URL if a job may use it: http(s), a host, and no private literal address."""
    parsed = URL(url) if isinstance(url, str) else url
    if parsed.scheme not in _ALLOWED_SCHEMES or not parsed.host:
        raise UnsafeUpstream(f"{url}: only http(s) URLs with a host are allowed")
    if parsed.user or parsed.password:
        raise UnsafeUpstream(f"{parsed.with_user(None)}: credentials in URLs are not allowed")
    if allow_private:
        return parsed
    host = parsed.host.strip("[]")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return parsed  # a name: the guarded resolver checks what it resolves to
    if not is_public(host):
        raise UnsafeUpstream(
            f"{parsed}: {host} is a private, loopback or link-local address; job URLs may not "
            "reach it (security.allow_private_urls)"
        )
    return parsed


class GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, then drops every non-global address."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        public = [r for r in results if is_public(r["host"])]
        if not public:
            addresses = ", ".join(sorted({r["host"] for r in results}))
            raise UnsafeUpstream(
                f"{host} resolves to {addresses}: a private, loopback or link-local address; "
                "job URLs may not reach it (security.allow_private_urls)"
            )
        return public

    async def close(self) -> None:
        await self._inner.close()


async def check_host(host: str, *, what: str, allow_private: bool) -> None:
    """Refuse `host` if it is, or resolves to, any address that is not public.

    For hosts another program connects to (the Docker engine pulling an image), where no
    resolver of ours sits between the name and the connection: every address a name has must
    be public. A name that does not resolve here is left to that program, which fails on it.
    """
    if allow_private:
        return
    bare = host.strip("[]").split("%", 1)[0]
    try:
        ipaddress.ip_address(bare)
        addresses = {bare}
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(bare, None)
        except (OSError, UnicodeError):
            return
        addresses = {str(info[4][0]) for info in infos}
    private = sorted(a for a in addresses if not is_public(a))
    if private:
        where = host if private == [bare] else f"{host} ({', '.join(private)})"
        raise UnsafeUpstream(
            f"{what}: {where} is a private, loopback or link-local address; jobs may not "
            "reach it (security.allow_private_urls)"
        )
