"""What the registry endpoint keeps in the store, as store requests and resolvers.

Three kinds of one-file entries, each of type `registry`:

- a tag: `tag.json` (`{digest, media_type, size}`), given inline, its version the digest: a
  tag resolves to a manifest digest once per ttl (a HEAD upstream), as an HF revision does;
- a manifest, by digest: upstream's exact bytes (`manifest`), given inline, checked against
  the digest; its media type in the entry's details;
- a blob, by digest: `blob`, fetched through transfer.py and verified against its sha256 as
  it streams, readable while it lands. A public blob's entry remembers where it is from (the
  request's `resumable`), so a daemon killed or stopped while fetching it fetches the rest at
  its next start, whether or not an engine asks again (`resumed_blob`).

Manifests and blobs are addressed by digest alone, whatever registry or repository named
them: the same base layer under two images is one entry, fetched once. A pull with
credentials is keyed by their fingerprint as well, so a request without them never finds
what they fetched (it asks upstream, which refuses it as it would have).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Unpack

from ..errors import StoreError
from ..store import (
    BlobSink,
    Entry,
    EntryDetails,
    EntryRequest,
    Expected,
    Fetch,
    FileFetch,
    FileSpec,
    Manifest,
)
from .identity import canonical
from .registry_upstream import Credential, Place, RegistryUpstream

TYPE = "registry"
TAG_FILE = "tag.json"
MANIFEST_FILE = "manifest"
BLOB_FILE = "blob"
_PORTED = re.compile(r"(.+)__([0-9]{1,5})")
_PATH_HOST = re.compile(r"[a-z0-9]+(?:[.-]+[a-z0-9]+)*")


@dataclass(frozen=True)
class Repository:
    """A repository of a registry, as the registry endpoint was asked for it."""

    registry: str  # canonical: docker.io for Docker Hub
    name: str  # e.g. library/ubuntu

    def __str__(self) -> str:
        return f"{self.registry}/{self.name}"


def is_host(component: str) -> bool:
    """A name's first component is a registry host as Docker tells one from a user name: it
    has a `.` or a `:`, or is `localhost`."""
    return "." in component or ":" in component or component == "localhost"


def host_of_component(component: str) -> str | None:
    """The registry host a name's first component names on the registry endpoint, if any:
    `ghcr.io`, `127.0.0.1:5000` (Podman, raw clients), or `127.0.0.1__5000`, the form
    `engine_path` gives a host with a port (a reference's path may not hold a `:`)."""
    ported = _PORTED.fullmatch(component)
    if ported is not None and is_host(ported.group(1)):
        return f"{ported.group(1)}:{ported.group(2)}"
    return component if is_host(component) else None


def engine_path(registry: str, name: str) -> str | None:
    """How `docker pull` names `registry/name` on the registry endpoint (it cannot send the
    `ns` query): Docker Hub names as they are, any other registry's host as the first path
    component, its port as `__PORT`. None for a host no reference can hold (IPv6, capitals
    are lowered first)."""
    if registry == "docker.io":
        return name
    host, _, port = registry.lower().partition(":")
    if not _PATH_HOST.fullmatch(host) or not is_host(registry.lower()):
        return None
    return f"{host}__{port}/{name}" if port else f"{host}/{name}"


@dataclass(frozen=True)
class TagDocument:
    digest: str
    media_type: str
    size: int

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TagDocument:
        try:
            document: Any = json.loads(data)
            return cls(str(document["digest"]), str(document["media_type"]), int(document["size"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"a registry tag entry is damaged: {exc!r}") from exc


def _identity(kind: str, credential: Credential | None, **fields: str) -> str:
    identity = {"type": TYPE, "kind": kind, **fields}
    if credential is not None:
        identity["credential"] = credential.fingerprint
    return canonical(identity)


def inline(path: str, data: bytes) -> FileSpec:
    expected = Expected(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    return FileSpec(path=path, expected=expected, data=data)


class RegistrySource:
    """Store requests for the registry endpoint's tags, manifests and blobs."""

    def __init__(self, upstream: RegistryUpstream) -> None:
        self.upstream = upstream

    def tag(self, repo: Repository, tag: str, credential: Credential | None) -> Fetch[_TagResolver]:
        key = _identity("tag", credential, registry=repo.registry, name=repo.name, tag=tag)
        request = EntryRequest(key=key, type=TYPE, source=f"{repo}:{tag} (tag)")
        return Fetch(request, _TagResolver(self.upstream, repo, tag, credential))

    def manifest(
        self, repo: Repository, digest: str, credential: Credential | None
    ) -> Fetch[_ManifestResolver]:
        key = _identity("manifest", credential, digest=digest)
        request = EntryRequest(key=key, type=TYPE, source=f"{repo}@{digest} (manifest)")
        return Fetch(request, _ManifestResolver(self.upstream, repo, digest, credential))

    def blob(
        self, repo: Repository, digest: str, size: int, credential: Credential | None
    ) -> FileFetch[_BlobResolver]:
        key = _identity("blob", credential, digest=digest)
        # A private blob's credential is never kept: it waits for the engine's next pull.
        where = {"registry": repo.registry, "name": repo.name, "digest": digest, "size": size}
        resumable = None if credential is not None else json.dumps(where, sort_keys=True)
        request = EntryRequest(
            key=key, type=TYPE, source=f"{repo}@{digest} (blob)", resumable=resumable
        )
        spec = FileSpec(
            path=BLOB_FILE,
            expected=Expected(size=size, sha256=digest.removeprefix("sha256:")),
        )
        return FileFetch(
            request, spec, _BlobResolver(self.upstream, repo, digest, spec, credential)
        )

    def resumed_blob(self, entry: Entry) -> FileFetch[_BlobResolver] | None:
        """The public blob a previous run left half-fetched, to fetch again (the bytes it
        kept are not asked again); None for any other entry."""
        if entry.type != TYPE or not entry.resumable:
            return None
        try:
            where: Any = json.loads(entry.resumable)
            repo = Repository(str(where["registry"]), str(where["name"]))
            digest, size = str(where["digest"]), int(where["size"])
        except (ValueError, KeyError, TypeError):
            return None
        return self.blob(repo, digest, size, None)

    def blob_request(self, digest: str, credential: Credential | None) -> EntryRequest:
        """A blob's identity alone: to look it up before its size is known."""
        key = _identity("blob", credential, digest=digest)
        return EntryRequest(key=key, type=TYPE, source=f"{digest} (blob)")


class _Resolver:
    def __init__(
        self, upstream: RegistryUpstream, repo: Repository, credential: Credential | None
    ) -> None:
        self.upstream = upstream
        self.repo = repo
        self.credential = credential
        self.place: Place = upstream.place(repo.registry, private=credential is not None)

    def details(self, **more: Unpack[EntryDetails]) -> EntryDetails:
        return {
            "registry": self.repo.registry,
            "name": self.repo.name,
            "from": str(self.place.base),
            "private": self.credential is not None,
            **more,
        }

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        raise StoreError(f"{file.path}: given inline, never fetched")

    async def close(self) -> None:
        return None


class _TagResolver(_Resolver):
    def __init__(
        self,
        upstream: RegistryUpstream,
        repo: Repository,
        tag: str,
        credential: Credential | None,
    ) -> None:
        super().__init__(upstream, repo, credential)
        self.tag = tag

    async def resolve(self) -> Manifest:
        head = await self.upstream.head_manifest(
            self.place, self.repo.name, self.tag, self.credential
        )
        document = TagDocument(head.digest, head.media_type, head.size)
        details = self.details(tag=self.tag, digest=head.digest)
        return Manifest(head.digest, (inline(TAG_FILE, document.to_bytes()),), details)


class _ManifestResolver(_Resolver):
    def __init__(
        self,
        upstream: RegistryUpstream,
        repo: Repository,
        digest: str,
        credential: Credential | None,
    ) -> None:
        super().__init__(upstream, repo, credential)
        self.digest = digest

    async def resolve(self) -> Manifest:
        body, media_type = await self.upstream.get_manifest(
            self.place, self.repo.name, self.digest, self.credential
        )
        details = self.details(digest=self.digest, media_type=media_type)
        return Manifest(self.digest, (inline(MANIFEST_FILE, body),), details)


class _BlobResolver(_Resolver):
    def __init__(
        self,
        upstream: RegistryUpstream,
        repo: Repository,
        digest: str,
        spec: FileSpec,
        credential: Credential | None,
    ) -> None:
        super().__init__(upstream, repo, credential)
        self.digest = digest
        self.spec = spec

    async def resolve(self) -> Manifest:
        """Nothing to ask: the digest and the size (from a manifest, or a HEAD) say it."""
        details = self.details(digest=self.digest)
        return Manifest(self.digest, (self.spec,), details)

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        await self.upstream.download_blob(
            self.place, self.repo.name, self.digest, sink, self.credential
        )
