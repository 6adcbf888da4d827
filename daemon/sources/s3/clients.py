"""aiobotocore's S3 clients: one per endpoint, credentials and guard, made once and reused.

A client owns a connection pool, and making one loads S3's service model, so a resolver does
not make its own: `S3Clients.use(key)` lends the client for that key, making it on first use.
Clients idle beyond the `keep` most recently used are closed (a job can name any endpoint and
any IAM keys, and each would otherwise keep a pool open for the daemon's lifetime); the rest
close with the source.

A client for a host a job chose is guarded against SSRF at every step: the endpoint is checked
(`check_url`) before the client exists, its resolver drops private addresses (so a name cannot
resolve to this host's networks), and every socket it opens is checked against the address it
is about to reach, which covers literal addresses that no resolver sees and the redirects
aiohttp follows inside aiobotocore. Endpoints from the operator's config are trusted.

aiobotocore is imported when the first client or credential chain is needed, not with this
module: with botocore it is a quarter of a second of the daemon's start and of every CLI
command, and a host whose jobs never name S3 never needs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp.abc import AbstractResolver
from botocore.exceptions import BotoCoreError

from ... import __version__
from ...errors import UnsafeUpstream, UpstreamAuthError
from ...settings import DownloadSettings
from ..netguard import GuardedResolver, check_url, is_public
from .places import ANONYMOUS, AWS_CHAIN, Credentials, Place

KEEP_IDLE = 16
"""Idle clients kept for reuse; older idle ones are closed."""


@dataclass(frozen=True)
class ClientKey:
    """What makes two clients different: where they connect, who signs, whether guarded."""

    endpoint: str | None  # None: AWS's own, chosen (and redirected) by botocore
    region: str
    access_key_id: str | None
    secret_digest: str | None = field(repr=False)  # the key never holds the secret itself
    guarded: bool

    @classmethod
    def of(cls, place: Place, credentials: Credentials, *, guarded: bool) -> ClientKey:
        digest = None
        if credentials.signs:
            material = f"{credentials.secret_access_key}\0{credentials.token or ''}"
            digest = hashlib.sha256(material.encode()).hexdigest()
        endpoint = None if place.aws else place.endpoint
        return cls(endpoint, credentials.region, credentials.access_key_id, digest, guarded)


@dataclass
class _Client:
    client: Any
    users: int = 0


class S3Clients:
    def __init__(
        self, download: DownloadSettings, *, allow_private: bool, keep: int = KEEP_IDLE
    ) -> None:
        self.download = download
        self.allow_private = allow_private
        self.keep = keep
        self._session: Any = None  # aiobotocore's, made on first use
        self._clients: OrderedDict[ClientKey, _Client] = OrderedDict()
        self._making = asyncio.Lock()

    def __len__(self) -> int:
        """Clients open now, lent or idle."""
        return len(self._clients)

    async def resolve(self, credentials: Credentials) -> Credentials:
        """The AWS chain's current keys (or anonymous when the chain has none); other
        credentials as they are."""
        if credentials.origin != AWS_CHAIN:
            return credentials
        try:
            chain = await self._aws_session().get_credentials()
            got = await chain.get_frozen_credentials() if chain is not None else None
        except BotoCoreError as exc:
            raise UpstreamAuthError(f"{AWS_CHAIN}: {exc}") from exc
        if got is None or not got.access_key:
            return Credentials(None, None, credentials.region, ANONYMOUS)
        return Credentials(got.access_key, got.secret_key, credentials.region, AWS_CHAIN, got.token)

    @asynccontextmanager
    async def use(self, place: Place, credentials: Credentials) -> AsyncIterator[Any]:
        """The client for this place and these (resolved) credentials, made on first use."""
        guarded = not place.trusted
        if guarded:
            check_url(place.endpoint, allow_private=self.allow_private)
        key = ClientKey.of(place, credentials, guarded=guarded and not self.allow_private)
        async with self._making:
            held = self._clients.get(key)
            if held is None:
                held = self._clients[key] = _Client(await self._make(key, credentials))
            self._clients.move_to_end(key)
            held.users += 1
        try:
            yield held.client
        finally:
            held.users -= 1
            await self._close_idle_beyond_keep()

    def _aws_session(self) -> Any:
        if self._session is None:
            import aiobotocore.session  # lazily: see the docstring

            self._session = aiobotocore.session.get_session()
        return self._session

    async def _make(self, key: ClientKey, credentials: Credentials) -> Any:
        from aiobotocore.config import AioConfig  # lazily: see the docstring
        from botocore import UNSIGNED

        config = AioConfig(
            signature_version=UNSIGNED if not credentials.signs else "s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": 1},  # control.py retries
            connect_timeout=self.download.connect_timeout,
            read_timeout=self.download.stall_timeout,
            max_pool_connections=self.download.concurrency,
            user_agent_extra=f"nosana-cache/{__version__}",
            ignore_configured_endpoint_urls=True,  # the endpoint is the one the place names
            proxies={},  # direct, as transfer.py's sessions: no HTTP(S)_PROXY from the env
            connector_args=_guarded_connector() if key.guarded else {},
            warm_up_loader_caches=True,  # S3's service model is read in a thread, not the loop
            # No CRC trailers on uploads (the site store's writes): S3-compatible stores that
            # predate them refuse such requests, and every byte is verified when read anyway.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        context = self._aws_session().create_client(
            "s3",
            endpoint_url=key.endpoint,
            region_name=key.region,
            aws_access_key_id=credentials.access_key_id if credentials.signs else None,
            aws_secret_access_key=credentials.secret_access_key if credentials.signs else None,
            aws_session_token=credentials.token if credentials.signs else None,
            config=config,
        )
        client = await context.__aenter__()
        client.meta.events.register("after-call.s3", _note_signing_region)
        return client

    async def _close_idle_beyond_keep(self) -> None:
        idle = [key for key, held in self._clients.items() if held.users == 0]
        # Taken out all at once, before any await: a client being closed is never lent.
        surplus = [self._clients.pop(key) for key in idle[: max(0, len(idle) - self.keep)]]
        for held in surplus:
            await held.client.close()

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for held in clients:
            await held.client.close()


def _note_signing_region(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Keep, in an answer's metadata, the region its request was finally signed for: botocore
    follows S3's region redirects, and the data plane must then sign for that region too."""
    region = context.get("signing", {}).get("region")
    if region:
        parsed.setdefault("ResponseMetadata", {})["SigningRegion"] = region


def _guarded_connector() -> dict[str, Any]:
    resolver: AbstractResolver = GuardedResolver()
    return {"resolver": resolver, "socket_factory": _public_socket}


def _public_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """A socket for `addr_info`, if its address is public: the last check before connecting,
    for literal addresses and redirect targets that never went through the resolver."""
    family, type_, proto, _name, address = addr_info
    if not is_public(str(address[0])):
        raise UnsafeUpstream(
            f"{address[0]} is a private, loopback or link-local address; job URLs may not "
            "reach it (security.allow_private_urls)"
        )
    return socket.socket(family=family, type=type_, proto=proto)
