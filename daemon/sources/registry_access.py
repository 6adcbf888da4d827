"""How one upstream registry is reached: where (`Place`), whose (`Credential`), and its own
authentication, as registry_upstream.py's requests need it.

`GET /v2/` says how a registry authenticates (`WWW-Authenticate`), asked once per place. A
Basic realm takes the client's credentials themselves, sent with every request. A Bearer realm
gives a token per repository (`scope=repository:NAME:pull`), anonymous or for the client's
Basic credentials, which is a `Grant`:

    grant.headers()      the token for the next request; fetched anew once it is within
                         `TOKEN_MARGIN` of its `expires_in`
    grant.renew(sent)    upstream answered 401 to a request sent with `sent`: a fresh token,
                         unless another request renewed it meanwhile

A token lives `expires_in` seconds (60 at Docker Hub by default), and a 1.5 GiB layer's ranged
parts can outlive it: so no request's token is fixed when its download begins. Every request
asks the grant when it is sent (transfer.py's `auth`, sent to the origin's host only), and a
401 from there renews it once for all the parts it refused together (single-flight, under the
grant's lock) and sends the request again: the part goes on from the byte it had
(redirects.py). A token refused right after its renewal is a real refusal.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from yarl import URL

from ..errors import UpstreamAuthError, UpstreamError
from ..logs import get_logger
from ..util.clock import Clock, SystemClock
from .transfer import Transfer

log = get_logger(__name__)

TOKEN_MARGIN = 10.0
"""A token this close to its expiry is not used: fetched anew."""
DEFAULT_LIFETIME = 60.0
"""A token's lifetime when the token service names none (the Distribution spec's default)."""
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credential:
    """A client's Basic `Authorization`, passed on to upstream's token service; entries it
    fetched are keyed by its `fingerprint`, so a request without it never finds them."""

    header: str

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.header.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Place:
    """Where one registry's content is fetched from."""

    registry: str
    base: URL
    trusted: bool
    """Named by the operator (`docker.registry_mirrors`): private addresses allowed."""


@dataclass(frozen=True)
class _Challenge:
    scheme: str  # "bearer", "basic" or "" (open)
    realm: str = ""
    service: str = ""


class Grant:
    """One repository's Bearer token for one credential (or none), renewed near its expiry
    or when upstream refused it; one renewal at a time."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, float]]],
        name: str,
        clock: Clock | None = None,
    ) -> None:
        """`fetch`: a fresh token and the time it expires at, on `clock`'s monotonic time."""
        self._clock = clock or SystemClock()
        self._fetch = fetch
        self.name = name
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def headers(self) -> Mapping[str, str]:
        token = self._token
        if token is None or self._expires - TOKEN_MARGIN < self._clock.monotonic():
            await self._renew(token)
        return {"Authorization": f"Bearer {self._token}"}

    async def renew(self, sent: Mapping[str, str]) -> None:
        """A fresh token: upstream refused the one in `sent` (unless it is no longer ours)."""
        refused = sent.get("Authorization", "").removeprefix("Bearer ")
        log.info("registry.token_refused", repository=self.name)
        await self._renew(refused)

    async def _renew(self, stale: str | None) -> None:
        async with self._lock:
            if self._token != stale:
                return  # renewed meanwhile, by the request that got here first
            self._token, self._expires = await self._fetch()


class RegistryAccess:
    """The challenges of the places asked, and the grants given there."""

    def __init__(self, transfer: Transfer, clock: Clock) -> None:
        self.transfer = transfer
        self.clock = clock
        self._challenges: dict[URL, _Challenge] = {}
        self._grants: dict[tuple[URL, str, str], Grant] = {}

    async def authorize(
        self, place: Place, name: str, credential: Credential | None
    ) -> tuple[dict[str, str], Grant | None]:
        """What a request for `name` at `place` sends: fixed headers (Basic: the client's
        own), or the grant whose token each request asks for (Bearer)."""
        challenge = await self._challenge(place)
        if challenge.scheme == "basic":
            return ({"Authorization": credential.header} if credential else {}), None
        if challenge.scheme != "bearer":
            return {}, None
        key = (place.base, name, _fingerprint(credential))
        grant = self._grants.get(key)
        if grant is None:

            async def fetch() -> tuple[str, float]:
                return await self._token(place, challenge, name, credential)

            grant = self._grants[key] = Grant(fetch, f"{place.registry}/{name}", self.clock)
        return {}, grant

    def forget(self, place: Place, name: str, credential: Credential | None) -> None:
        """Ask the place's challenge again, and start a new grant (upstream refused one)."""
        self._challenges.pop(place.base, None)
        self._grants.pop((place.base, name, _fingerprint(credential)), None)

    async def _challenge(self, place: Place) -> _Challenge:
        known = self._challenges.get(place.base)
        if known is not None:
            return known
        response = await self.transfer.get(
            place.base / "v2" / "", name=place.registry, trusted=place.trusted,
            ok=(200, 401, 403, 404),
        )  # fmt: skip
        challenge = _Challenge("")
        if response.status == 401:
            challenge = _parse_challenge(response.headers.get("WWW-Authenticate", ""))
        self._challenges[place.base] = challenge
        return challenge

    async def _token(
        self, place: Place, challenge: _Challenge, name: str, credential: Credential | None
    ) -> tuple[str, float]:
        realm = URL(challenge.realm)
        if realm.scheme not in ("http", "https"):
            raise UpstreamError(f"{place.registry}: token realm {challenge.realm!r} is not HTTP")
        query = {"scope": f"repository:{name}:pull"}
        if challenge.service:
            query["service"] = challenge.service
        headers = {"Authorization": credential.header} if credential else {}
        response = await self.transfer.get(
            realm.update_query(query), name=f"{place.registry} token", trusted=place.trusted,
            headers=headers, ok=(200, 401, 403), slot=False,
        )  # fmt: skip
        if response.status != 200:
            raise UpstreamAuthError(
                f"{place.registry}/{name}: the token service refused "
                f"{'these credentials' if credential else 'an anonymous pull'}"
            )
        document = _json_object(response.body, f"{place.registry} token")
        token = document.get("token") or document.get("access_token")
        if not isinstance(token, str) or not token:
            raise UpstreamError(f"{place.registry}: the token service named no token")
        expires_in = document.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else DEFAULT_LIFETIME
        return token, self.clock.monotonic() + max(lifetime, TOKEN_MARGIN + 1)


def _fingerprint(credential: Credential | None) -> str:
    return credential.fingerprint if credential else ""


def _parse_challenge(header: str) -> _Challenge:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) or m.group(3) for m in _PARAM.finditer(rest)}
    if scheme.lower() == "bearer" and params.get("realm"):
        return _Challenge("bearer", params["realm"], params.get("service", ""))
    if scheme.lower() == "basic":
        return _Challenge("basic")
    return _Challenge("")


def _json_object(body: bytes, name: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise UpstreamError(f"{name}: the answer is not JSON") from exc
    if not isinstance(document, dict):
        raise UpstreamError(f"{name}: the answer is not an object")
    return document
