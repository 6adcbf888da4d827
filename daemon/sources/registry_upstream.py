"""The pull side of a Distribution (OCI) registry, as the registry endpoint asks it.

    place(registry, private)          where a registry's content is fetched from: the
                                      registry's own host (registry-1.docker.io for Docker
                                      Hub names), or `docker.registry_mirrors[registry]`
                                      unless the pull has credentials (`mirror_for`)
    head_manifest / get_manifest      a tag's digest (HEAD: Docker Hub does not count it
                                      against the pull limit), a manifest's exact bytes
    head_blob / download_blob         a blob's size; its bytes through transfer.py (ranged
                                      parts, resume, redirects to a CDN with Range there)

Authentication is the registries' own (registry_access.py): `GET /v2/` says how, once per
place; a Bearer realm gives a token per repository, renewed when it expires or upstream
refuses it, mid-blob too (a part goes on from the byte it had); a Basic realm takes the
credentials themselves. A refusal that stands after that is asked once more with a fresh
challenge. The credentials are the requesting client's own (its `Authorization`), never
anything of the operator's.

Upstream's refusals keep the Distribution code it gave (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`,
`BLOB_UNKNOWN`), so the endpoint answers as upstream would.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from yarl import URL

from ..errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamIntegrityError,
    UpstreamNotFound,
    UpstreamRateLimited,
)
from ..settings import DockerSettings
from ..store import BlobSink
from ..util.clock import Clock, SystemClock
from .registry_access import Credential as Credential  # imported from here by the endpoint
from .registry_access import Grant, RegistryAccess
from .registry_access import Place as Place
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
_ANSWERS = (200, 401, 403, 404, 429)
T = TypeVar("T")


class RegistryUnknown(UpstreamNotFound):
    """Upstream has no such repository, manifest or blob; `code` is its Distribution code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ManifestHead:
    digest: str
    media_type: str
    size: int


def mirror_for(
    mirrors: Mapping[str, str], registry: str, *, private: bool, share_private: bool
) -> str | None:
    """The mirror (`docker.registry_mirrors`) a pull of `registry` goes through, if any; for
    the registry endpoint's fetches and the daemon's own pulls alike. A pull with credentials
    goes through none unless `site.share_private`: a site's pull-through registry keeps what it
    pulled and serves it to every node that asks, so a private image through it would be
    shared; it is fetched from the registry's own host instead."""
    if private and not share_private:
        return None
    return mirrors.get(registry)


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
        self,
        settings: DockerSettings,
        transfer: Transfer,
        clock: Clock | None = None,
        *,
        share_private: bool = False,
    ) -> None:
        self.clock = clock or SystemClock()
        self.mirrors = {canonical_registry(k): v for k, v in settings.registry_mirrors.items()}
        self.share_private = share_private
        """`site.share_private`: pulls with credentials may use the mirrors too."""
        self.transfer = transfer
        self.access = RegistryAccess(transfer, self.clock)

    def place(self, registry: str, *, private: bool) -> Place:
        """Where `registry`'s content is fetched from, for a pull with credentials
        (`private`) or without."""
        registry = canonical_registry(registry)
        mirror = mirror_for(
            self.mirrors, registry, private=private, share_private=self.share_private
        )
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

        async def once(headers: dict[str, str], grant: Grant | None) -> None:
            try:
                await self.transfer.download(
                    url, sink, name=f"{place.registry}/{name}@{digest[:19]}",
                    trusted=place.trusted, headers=headers, auth=grant,
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
        async def once(headers: dict[str, str], grant: Grant | None) -> Response:
            headers = headers | {"Accept": ACCEPT}
            response = await self.transfer.get(
                url, name=f"{place.registry}/{name}", trusted=place.trusted, headers=headers,
                method=method, ok=_ANSWERS, auth=grant,
            )  # fmt: skip
            _raise_refusal(response, f"{place.registry}/{name}", unknown)
            return response

        return await self._authorized(place, name, credential, once)

    async def _authorized(
        self,
        place: Place,
        name: str,
        credential: Credential | None,
        operation: Callable[[dict[str, str], Grant | None], Awaitable[T]],
    ) -> T:
        """`operation` with upstream's authorization (its grant renews an expired token by
        itself); once more with a fresh challenge and grant if upstream still refused."""
        try:
            return await operation(*await self.access.authorize(place, name, credential))
        except UpstreamAuthError:
            self.access.forget(place, name, credential)
            return await operation(*await self.access.authorize(place, name, credential))


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


def _media_type_of(body: bytes) -> str:
    """An OCI manifest may leave its type to the body's `mediaType` only."""
    try:
        media_type = json.loads(body).get("mediaType")
    except (ValueError, AttributeError):
        return MANIFEST_TYPES[2]
    return media_type if isinstance(media_type, str) else MANIFEST_TYPES[2]
