"""Which way the engine pulls an image: through the registry endpoint, a mirror, or direct.

    endpoint   `127.0.0.1:9812/library/ubuntu:latest`, `127.0.0.1:9812/ghcr.io/org/tool:1`:
               the daemon's own registry endpoint (`registry.mirror`), whose store serves the
               layers and fetches what it lacks (from `docker.registry_mirrors[registry]` if
               set and the pull may use it: `mirror_for`); a registry's port is `__PORT` in
               the name (sources/registry.py)
    mirror     `mirror.site:5000/library/ubuntu:latest`: `docker.registry_mirrors`, as before
               the endpoint (it is off, or the pull cannot go through it)
    direct     the reference as the job wrote it

Either way but direct, the image is then tagged as the job wrote it and the route's tag
removed. A pull with credentials never uses a mirror unless `site.share_private`, whichever way
it goes (`mirror_for`, the rule the endpoint's fetches follow too). A pull goes through the
endpoint unless: it is by digest (an engine names a digest pull only by the reference it
pulled, and no tag can give it the job's); it is a Docker Hub image, `docker.registry_mirrors`
names no Docker Hub mirror and the engine has registry-mirrors of its own (the operator's
engine knows where Docker Hub is: kept); the registry's host cannot be a reference's path
component (IPv6); or the engine could not reach the endpoint once (a daemon in a container of
its own network): then never again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import docker.auth
import docker.errors
import docker.utils

from ..settings import DockerSettings
from ..sources.registry import engine_path
from ..sources.registry_upstream import canonical_registry, mirror_for

_HUB = {"docker.io", "index.docker.io", "registry.hub.docker.com", "registry-1.docker.io"}
_UNREACHABLE = (
    "connection refused",
    "no route to host",
    "i/o timeout",
    "dial tcp",
    "server gave http response to https client",
)
"""What an engine says when the endpoint is beyond it; the last is Podman's, which trusts no
plain-HTTP registry it was not told of. Its pulls of the endpoint's names go through libpod's
pull with `tlsVerify=false` (libpod.py), so only a Podman that refuses even that says it."""
UNREACHABLE_HINT = (
    "the engine cannot use the registry endpoint; images are pulled without it. An engine that"
    " still wants TLS (Podman) needs the endpoint listed as insecure: nosana-cache registry"
    " config --engine podman"
)


@dataclass(frozen=True)
class ImageRef:
    """`ubuntu` → registry docker.io, path library/ubuntu, tag latest."""

    original: str
    registry: str
    path: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        name, _, digest_part = ref.partition("@")
        digest = digest_part or None
        repository, tag = docker.utils.parse_repository_tag(name)
        registry, remote = docker.auth.resolve_repository_name(repository)
        if registry in _HUB and "/" not in remote:
            remote = f"library/{remote}"
        if tag is None and digest is None:
            tag = "latest"
        return cls(ref, registry, remote, tag, digest)

    @classmethod
    def read(cls, ref: str) -> ImageRef | None:
        """`parse`, or None for a reference the engine's own parser is left to refuse."""
        try:
            return cls.parse(ref)
        except (docker.errors.DockerException, ValueError):
            return None

    @property
    def local_name(self) -> str:
        """How the engine names it after a pull (the reference as the job wrote it)."""
        repository, _tag = docker.utils.parse_repository_tag(self.original.split("@", 1)[0])
        return f"{repository}@{self.digest}" if self.digest else f"{repository}:{self.tag}"

    @property
    def suffix(self) -> str:
        return f"@{self.digest}" if self.digest else f":{self.tag}"

    def via(self, mirror: str) -> str:
        return f"{mirror}/{self.path}{self.suffix}"

    def canonical(self) -> str:
        return f"{canonical_registry(self.registry)}/{self.path}{self.suffix}"


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: str | None
    server: str | None = None

    def auth_config(self, server: str | None = None) -> dict[str, str]:
        """The engine's `X-Registry-Auth`, for `server` (the endpoint), else the job's."""
        config = {"username": self.username or "", "password": self.password or ""}
        if server or self.server:
            config["serveraddress"] = server or self.server or ""
        return config


@dataclass(frozen=True)
class Route:
    source: str
    """The reference the engine pulls."""
    via: str  # "endpoint", "mirror" or "direct"
    auth: dict[str, str] | None

    @property
    def endpoint_name(self) -> str | None:
        """The repository the endpoint is asked for (`library/ubuntu`): where its refusals
        (registry/refusals.py) say why a pull through it failed."""
        if self.via != "endpoint":
            return None
        repository = docker.utils.parse_repository_tag(self.source.split("@", 1)[0])[0]
        return str(repository).split("/", 1)[1]


def because(cause: str | None) -> str:
    """A failed pull's message's tail naming the endpoint's cause (the engine shows only a
    status)."""
    return f" (the registry endpoint: {cause})" if cause else ""


class PullRoutes:
    def __init__(
        self,
        settings: DockerSettings,
        endpoint: Callable[[], str | None],
        *,
        mirror_private: bool,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        """`HOST:PORT` of the registry endpoint while it listens, else None."""
        self.mirror_private = mirror_private
        self.endpoint_unreachable = False
        self._mirrored = {canonical_registry(r) for r in settings.registry_mirrors}

    def mirror_for(self, image: ImageRef, credentials: Credentials | None) -> str | None:
        """The mirror to pull `image` through, if any (none for a private pull, unless the
        site shares private data)."""
        return mirror_for(
            self.settings.registry_mirrors,
            image.registry,
            private=_private(credentials),
            share_private=self.mirror_private,
        )

    def choose(
        self, image: ImageRef, credentials: Credentials | None, engine_mirrors: list[str]
    ) -> Route:
        endpoint = self._endpoint_path(image, engine_mirrors)
        if endpoint is not None:
            auth = credentials.auth_config(endpoint.split("/", 1)[0]) if credentials else None
            return Route(f"{endpoint}{image.suffix}", "endpoint", auth)
        auth = credentials.auth_config() if credentials else None
        mirror = self.mirror_for(image, credentials)
        if mirror:
            return Route(image.via(mirror), "mirror", auth)
        return Route(image.local_name, "direct", auth)

    def unreachable(self, route: Route, error: str) -> bool:
        """Whether a pull's `error` says the engine cannot reach the endpoint; if so, later
        pulls go the way they would without it."""
        address = route.source.split("/", 1)[0]
        lowered = error.lower()
        if route.via != "endpoint" or address not in error:
            return False
        if not any(reason in lowered for reason in _UNREACHABLE):
            return False
        self.endpoint_unreachable = True
        return True

    def _endpoint_path(self, image: ImageRef, engine_mirrors: list[str]) -> str | None:
        address = self.endpoint()
        if address is None or self.endpoint_unreachable or image.digest:
            return None
        registry = canonical_registry(image.registry)
        theirs = [m for m in engine_mirrors if address not in m]
        if registry == "docker.io" and registry not in self._mirrored and theirs:
            return None
        path = engine_path(registry, image.path)
        return f"{address}/{path}" if path is not None else None


def _private(credentials: Credentials | None) -> bool:
    return credentials is not None and bool(credentials.username)
