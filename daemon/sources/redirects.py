"""Following a download's redirects by hand, and asking its origin again when the target expires.

The Hub answers a file's resolve URL with a 302 to a CAS bridge or CDN whose URL is signed
and expires (`X-Amz-Expires=3600`, CloudFront's `Expires`/`Policy`/`Signature`); Ollama's
registry does the same for blobs. A download keeps that target for its other parts and its
retries (one redirect, not one per part), so a large file on a slow link outlives it: the
target then answers 403, which would read as an auth error. So:

    origin ──302──► target (kept: every part and retry asks it directly)
                      │ 401/403 to a request on a target learnt earlier
                      ▼
    origin ──302──► a fresh target (one renewal shared by the parts that hit the expiry
                    together), the same request again: the part resumes where it was

A target that refuses a request right after a fresh redirect is a real refusal, answered as
today (`UpstreamAuthError`); so is a 401/403 from the origin itself. Each request renews at most
once.

Credentials that upstream expires while a download runs (a registry's Bearer token:
registry_access.py) are a target's `auth`, asked for each request sent to the origin's host
(never elsewhere), not fixed when the download began. A 401 from the origin's host (to a part,
or to the origin request that renews a redirect) renews them, once for the requests that were
refused the same credentials together, and sends the request again, once: the part resumes
where it was.

Signed URLs go out byte for byte: a `Location` is parsed as already encoded (yarl would
otherwise rewrite `%2F` and `%27` in its query and break the signature), and joined so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from yarl import URL

from ..errors import UpstreamError
from ..logs import get_logger
from .netguard import check_url

log = get_logger(__name__)

MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
EXPIRED = frozenset({401, 403})
"""What a signed target answers once its signature has expired (S3's `AccessDenied: Request
has expired`, CloudFront's 403), and what it answers to a request it refuses outright."""
_AUTH_HEADERS = ("authorization", "cookie", "x-amz-security-token")

Signer = Callable[[str, URL, Mapping[str, str]], Mapping[str, str]]
"""Headers that authenticate one request (S3's SigV4) given its method, URL and own headers,
computed afresh for every request."""


class Authorizer(Protocol):
    """Credentials for the origin's host that upstream may expire mid-download."""

    async def headers(self) -> Mapping[str, str]:
        """The headers for the next request (renewed first if they are about to expire)."""
        ...

    async def renew(self, sent: Mapping[str, str]) -> None:
        """Upstream answered 401 to a request sent with `sent`: renew them, unless another
        request did meanwhile."""
        ...


@dataclass(eq=False)
class Target:
    """Where one download's requests go: its origin, and the target its redirects led to.
    Compared by identity: a download's own queue for connections (slots.py)."""

    origin: URL
    origin_headers: dict[str, str]
    trusted: bool
    name: str
    size: int
    sign: Signer | None = None
    auth: Authorizer | None = None
    """Sent to the origin's host with each request, renewed after a 401 from there."""
    url: URL = field(init=False)
    """The last target learnt (the origin until a redirect is followed)."""
    headers: dict[str, str] = field(init=False)
    """The headers for `url`: credentials dropped once a redirect left the origin's host."""
    generation: int = 0
    """How many times `url` was learnt from the origin; a part that saw its target expire
    renews it only if no other part did meanwhile."""
    renewing: asyncio.Lock = field(default_factory=asyncio.Lock)
    ranges: bool | None = None  # unknown until the first answer
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # the first answer came

    def __post_init__(self) -> None:
        self.url, self.headers = self.origin, self.origin_headers

    @property
    def redirected(self) -> bool:
        """Whether requests go to a target a redirect named, not to the origin."""
        return self.url != self.origin


class Redirects:
    """Opens a target's requests on a session, following and renewing its redirects."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def open(
        self,
        session: aiohttp.ClientSession,
        target: Target,
        extra: Mapping[str, str],
        method: str = "GET",
        follow: bool = True,
    ) -> aiohttp.ClientResponse:
        """The first answer that is not a redirect. A 401 from the origin's host to a request
        with the target's `auth` renews it (or takes what another request renewed meanwhile)
        and asks again, once."""
        sent = dict(await target.auth.headers()) if target.auth is not None else {}
        response = await self._open(session, target, extra, method, follow, sent)
        if target.auth is None or response.status != 401:
            return response
        if response.url.origin() != target.origin.origin():
            return response  # a redirect target's refusal: not the origin's credentials
        response.release()
        await target.auth.renew(sent)
        fresh = dict(await target.auth.headers())
        return await self._open(session, target, extra, method, follow, fresh)

    async def _open(
        self,
        session: aiohttp.ClientSession,
        target: Target,
        extra: Mapping[str, str],
        method: str,
        follow: bool,
        auth: Mapping[str, str],
    ) -> aiohttp.ClientResponse:
        """The first answer that is not a redirect, `auth` sent to the origin's host. A
        401/403 from a target learnt by an earlier request renews the target from the origin
        (or takes the one another part renewed meanwhile) and asks again, once."""
        learnt, seen = target.redirected, target.generation
        response = await self._follow(
            session, target, extra, method, follow, auth, from_origin=False
        )
        if not (learnt and follow and response.status in EXPIRED):
            return response
        response.release()
        async with target.renewing:  # one renewal for the parts that saw the same target go
            renew = target.generation == seen
            log.info(
                "transfer.redirect_expired",
                file=target.name,
                status=response.status,
                target=str(response.url.with_query(None)),
                renew=renew,
            )
            return await self._follow(
                session, target, extra, method, follow, auth, from_origin=renew
            )

    async def _follow(
        self,
        session: aiohttp.ClientSession,
        target: Target,
        extra: Mapping[str, str],
        method: str,
        follow: bool,
        auth: Mapping[str, str],
        *,
        from_origin: bool,
    ) -> aiohttp.ClientResponse:
        """Send the request (from the origin, or from the target learnt last), following
        redirects by hand: credentials are dropped when the host changes, a signature and
        `auth` are only ever sent to the origin's host. A target learnt here is kept for the
        others."""
        url, headers = (
            (target.origin, target.origin_headers) if from_origin else (target.url, target.headers)
        )
        for hop in range(MAX_REDIRECTS):
            if not target.trusted:
                check_url(url, allow_private=self.allow_private)
            outgoing = {**headers, **extra}
            if url.origin() == target.origin.origin():
                outgoing |= auth
                if target.sign is not None:
                    outgoing |= target.sign(method, url, outgoing)
            response = await session.request(method, url, headers=outgoing, allow_redirects=False)
            location = response.headers.get("Location")
            if follow and response.status in REDIRECTS and location:
                response.release()
                next_url = url.join(URL(location, encoded=True))  # signed: byte for byte
                if next_url.origin() != url.origin():
                    headers = {k: v for k, v in headers.items() if k.lower() not in _AUTH_HEADERS}
                url = next_url
                continue
            if from_origin or hop > 0:  # else `url` is the target the request started at
                target.url, target.headers = url, headers
                target.generation += 1
            return response
        origin = target.origin.with_query(None)
        raise UpstreamError(f"{target.name}: more than {MAX_REDIRECTS} redirects from {origin}")
