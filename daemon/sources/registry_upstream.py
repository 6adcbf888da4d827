"""The pull side of a Distribution (OCI) registry, as the registry endpoint asks it.

    place(registry)                   where a registry's content is fetched from: the
                                      registry's own host (registry-1.docker.io for Docker
                                      Hub names), or `docker.registry_mirrors[registry]`
    head_manifest / get_manifest      a tag's digest (HEAD: Docker Hub does not count it
                                      against the pull limit), a manifest's exact bytes
    head_blob / download_blob         a blob's size; its bytes through transfer.py (ranged
                                      parts, resume, redirects to a CDN with Range there)

Authentication is the registries' own: `GET /v2/` says how (`WWW-Authenticate`), once per
place; a Bearer realm gives a token per repository (`scope=repository:NAME:pull`), anonymous
or with the client's Basic credentials, kept until it expires; a Basic realm takes the
credentials themselves. A token refused mid-way is fetched again once. The credentials are
the requesting client's own (its `Authorization`), never anything of the operator's.

Upstream's refusals keep the Distribution code it gave (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`,
`BLOB_UNKNOWN`), so the endpoint answers as upstream would.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from yarl import URL

from ..clock import Clock, SystemClock
from ..errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamIntegrityError,
    UpstreamNotFound,
    UpstreamRateLimited,
)
from ..settings import DockerSettings
from ..store import BlobSink
from .transfer import Response, Transfer

DOCKER_HUB = "docker.io"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry.hub.docker.com"})
HUB_HOST = "registry-1.docker.io"
MAX_MANIFEST = 4 * 1024 * 1024
"""A manifest or index larger than this is refused before it is stored (the biggest real
indexes are tens of KiB)."""
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)
TOKEN_MARGIN = 10.0
"""A token this close to its expiry is not used: fetched anew."""
_ANSWERS = (200, 401, 403, 404, 429)
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
T = TypeVar("T")


class RegistryUnknown(UpstreamNotFound):
    """Upstream has no such repository, manifest or blob; `code` is its Distribution code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


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
class ManifestHead:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class _Challenge:
    scheme: str  # "bearer", "basic" or "" (open)
    realm: str = ""
    service: str = ""


def canonical_registry(host: str) -> str:
    return DOCKER_HUB if host in HUB_ALIASES or host == HUB_HOST else host


def _base(host: str) -> URL:
    """`http://` or `https://` as given; else plain HTTP on loopback (as engines allow),
    HTTPS elsewhere."""
    if host.startswith(("http://", "https://")):
        return URL(host.rstrip("/"))
    name = URL(f"//{host}").host or host
    try:
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    return URL(f"{'http' if loopback else 'https'}://{host}")


class RegistryUpstream:
    def __init__(
        self, settings: DockerSettings, transfer: Transfer, clock: Clock | None = None
    ) -> None:
        self.clock = clock or SystemClock()
        self.mirrors = {canonical_registry(k): v for k, v in settings.registry_mirrors.items()}
        self.transfer = transfer
        self._challenges: dict[URL, _Challenge] = {}
        self._tokens: dict[tuple[URL, str, str], tuple[str, float]] = {}

    def place(self, registry: str) -> Place:
        registry = canonical_registry(registry)
        mirror = self.mirrors.get(registry)
        if mirror is not None:
            return Place(registry, _base(mirror), trusted=True)
        return Place(registry, _base(HUB_HOST if registry == DOCKER_HUB else registry), False)

    # -- manifests ------------------------------------------------------------------------

    async def head_manifest(
        self, place: Place, name: str, reference: str, credential: Credential | None
    ) -> ManifestHead:
        """The digest, type and size a reference names now; a GET when upstream's HEAD does
        not say the digest."""
        url = place.base / "v2" / name / "manifests" / reference
        try:
            response = await self._ask(place, name, url, "HEAD", credential, "MANIFEST_UNKNOWN")
        except RegistryUnknown:
            # A HEAD's 404 has no body: the GET says whether the tag or the name is unknown.
            await self.get_manifest(place, name, reference, credential)
            raise
        digest = response.headers.get("Docker-Content-Digest", "")
        size = int(response.headers.get("Content-Length") or -1)
        media_type = response.headers.get("Content-Type", "")
        if not digest.startswith("sha256:") or size < 0:
            body, media_type = await self.get_manifest(place, name, reference, credential)
            digest, size = "sha256:" + hashlib.sha256(body).hexdigest(), len(body)
        if size > MAX_MANIFEST:
            raise UpstreamError(f"{place.registry}/{name}:{reference}: manifest of {size} bytes")
        return ManifestHead(digest, media_type, size)

    async def get_manifest(
        self,
        place: Place,
        name: str,
        reference: str,
        credential: Credential | None,
    ) -> tuple[bytes, str]:
        """A manifest's exact bytes and media type; by digest, the bytes are checked."""
        url = place.base / "v2" / name / "manifests" / reference
        response = await self._ask(place, name, url, "GET", credential, "MANIFEST_UNKNOWN")
        body = response.body
        where = f"{place.registry}/{name}@{reference}"
        if len(body) > MAX_MANIFEST:
            raise UpstreamError(f"{where}: manifest larger than {MAX_MANIFEST} bytes")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise UpstreamIntegrityError(f"{where}: the registry sent a manifest of {digest}")
        media_type = response.headers.get("Content-Type", "") or _media_type_of(body)
        return body, media_type

    # -- blobs ----------------------------------------------------------------------------

    async def head_blob(
        self, place: Place, name: str, digest: str, credential: Credential | None
    ) -> int:
        url = place.base / "v2" / name / "blobs" / digest
        response = await self._ask(place, name, url, "HEAD", credential, "BLOB_UNKNOWN")
        length = response.headers.get("Content-Length", "")
        if not length.isdigit():
            raise UpstreamError(f"{place.registry}/{name}@{digest}: no size from the registry")
        return int(length)

    async def download_blob(
        self,
        place: Place,
        name: str,
        digest: str,
        sink: BlobSink,
        credential: Credential | None,
    ) -> None:
        """The blob's missing bytes into `sink` (the store checks them against `digest`)."""
        url = place.base / "v2" / name / "blobs" / digest

        async def once(headers: dict[str, str]) -> None:
            try:
                await self.transfer.download(
                    url, sink, name=f"{place.registry}/{name}@{digest[:19]}",
                    trusted=place.trusted, headers=headers,
                )  # fmt: skip
            except UpstreamNotFound as exc:
                raise RegistryUnknown(exc.message, "BLOB_UNKNOWN") from exc

        await self._authorized(place, name, credential, once)

    # -- authentication -------------------------------------------------------------------

    async def _ask(
        self,
        place: Place,
        name: str,
        url: URL,
        method: str,
        credential: Credential | None,
        unknown: str,
    ) -> Response:
        async def once(headers: dict[str, str]) -> Response:
            headers = headers | {"Accept": ACCEPT}
            response = await self.transfer.get(
                url, name=f"{place.registry}/{name}", trusted=place.trusted, headers=headers,
                method=method, ok=_ANSWERS,
            )  # fmt: skip
            _raise_refusal(response, f"{place.registry}/{name}", unknown)
            return response

        return await self._authorized(place, name, credential, once)

    async def _authorized(
        self,
        place: Place,
        name: str,
        credential: Credential | None,
        operation: Callable[[dict[str, str]], Awaitable[T]],
    ) -> T:
        """`operation` with upstream's authorization; once more with a fresh challenge and
        token if upstream refused the one it had."""
        try:
            return await operation(await self._headers(place, name, credential))
        except UpstreamAuthError:
            self._challenges.pop(place.base, None)
            self._tokens.pop((place.base, name, _fingerprint(credential)), None)
            return await operation(await self._headers(place, name, credential))

    async def _headers(
        self, place: Place, name: str, credential: Credential | None
    ) -> dict[str, str]:
        challenge = await self._challenge(place)
        if challenge.scheme == "basic":
            return {"Authorization": credential.header} if credential else {}
        if challenge.scheme != "bearer":
            return {}
        key = (place.base, name, _fingerprint(credential))
        held = self._tokens.get(key)
        if held is None or held[1] - TOKEN_MARGIN < self.clock.monotonic():
            held = await self._token(place, challenge, name, credential)
            self._tokens[key] = held
        return {"Authorization": f"Bearer {held[0]}"}

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
            headers=headers, ok=(200, 401, 403),
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
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 60.0
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


def _raise_refusal(response: Response, where: str, unknown: str) -> None:
    status = response.status
    if status == 200:
        return
    code, message = _distribution_error(response.body)
    said = f"{where}: the registry answered {status}" + (f" ({code}: {message})" if code else "")
    if status == 404:
        raise RegistryUnknown(said, code if code in _UNKNOWN_CODES else unknown)
    if status == 429:
        raise UpstreamRateLimited(said, delay=float(response.headers.get("Retry-After") or 0))
    raise UpstreamAuthError(said)


_UNKNOWN_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"})


def _distribution_error(body: bytes) -> tuple[str, str]:
    try:
        errors = json.loads(body).get("errors")
        first = errors[0]
        return str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):
        return "", ""


def _json_object(body: bytes, name: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise UpstreamError(f"{name}: the answer is not JSON") from exc
    if not isinstance(document, dict):
        raise UpstreamError(f"{name}: the answer is not an object")
    return document


def _media_type_of(body: bytes) -> str:
    """An OCI manifest may leave its type to the body's `mediaType` only."""
    try:
        media_type = json.loads(body).get("mediaType")
    except (ValueError, AttributeError):
        return MANIFEST_TYPES[2]
    return media_type if isinstance(media_type, str) else MANIFEST_TYPES[2]
