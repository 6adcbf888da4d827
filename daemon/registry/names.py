"""Which registry and repository a request means, and what it names, validated.

    GET /v2/library/ubuntu/manifests/latest                      Docker Hub (dockerd's mirror)
    GET /v2/library/ubuntu/manifests/latest?ns=docker.io         containerd's hosts.toml
    GET /v2/ghcr.io/org/tool/manifests/1.0                       Podman, a mirror at .../ghcr.io
    GET /v2/10.0.0.5__5000/team/app/manifests/1                  the daemon's own pulls

The `ns` query names the upstream registry (containerd); else a first path component that is
a registry host (it has a `.` or a `:`, or is `localhost`, as Docker tells a host from a
user name; `host__PORT` is `host:PORT`, as the daemon's own pulls name it, a reference's path
holding no `:`) does (Podman's mirror location with a path); else it is Docker Hub, where a
one-component name is an official image (`ubuntu` is `library/ubuntu`).
"""

from __future__ import annotations

import re

from ..errors import InvalidInput
from ..sources.registry import Repository, host_of_component
from ..sources.registry_upstream import DOCKER_HUB, canonical_registry

MAX_NAME = 255
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?)+(?::[0-9]{1,5})?|\[[0-9a-fA-F:.]+\](?::[0-9]{1,5})?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class BadRequest(InvalidInput):
    """A request this endpoint cannot take; `code` is the Distribution code it answers."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def repository(name: str, ns: str | None) -> Repository:
    """The upstream repository of a request for `/v2/<name>/...` (with its `ns` query)."""
    components = name.split("/")
    if ns is not None:
        registry = _host(ns)
    elif len(components) > 1 and (named := host_of_component(components[0])) is not None:
        registry, components = _host(named), components[1:]
    else:
        registry = DOCKER_HUB
    registry = canonical_registry(registry)
    if len(name) > MAX_NAME or not all(_COMPONENT.fullmatch(c) for c in components):
        raise BadRequest(f"{name!r} is not a repository name", "NAME_INVALID")
    if registry == DOCKER_HUB and len(components) == 1:
        components = ["library", *components]
    return Repository(registry, "/".join(components))


def is_digest(reference: str) -> bool:
    return reference.startswith("sha256:")


def digest(reference: str) -> str:
    if not _DIGEST.fullmatch(reference):
        raise BadRequest(f"{reference!r} is not a sha256 digest", "DIGEST_INVALID")
    return reference


def reference(text: str) -> str:
    """A tag or a digest, as the manifests route takes it."""
    if is_digest(text):
        return digest(text)
    if not _TAG.fullmatch(text):
        raise BadRequest(f"{text!r} is not a tag", "TAG_INVALID")
    return text


def _host(text: str) -> str:
    if not _HOST.fullmatch(text) or len(text) > MAX_NAME:
        raise BadRequest(f"{text!r} is not a registry host", "NAME_INVALID")
    return text.lower()
