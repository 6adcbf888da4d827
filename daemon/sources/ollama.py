"""Ollama models: the registry's Distribution API, laid out as Ollama keeps its models.

`model` is `name`, `name:tag`, `namespace/name:tag` or `host/namespace/name:tag` (tag
`latest` and namespace `library` by default). The manifest comes from
`/v2/<namespace>/<name>/manifests/<tag>`; the config blob and every layer from
`/v2/<namespace>/<name>/blobs/<digest>` through transfer.py (ranged, resumable, redirects to a
CDN followed). Blobs are sha256 already, so each is verified against its digest and lands in
the store under that same digest: two tags sharing weights share one blob.

The view is Ollama's own tree, so `ollama serve` in the container finds the model in place:

    manifests/<registry name>/<namespace>/<name>/<tag>    (the manifest bytes as served)
    blobs/sha256-<hex>                                    (config and layers)

The registry name is the model's own, as Ollama names it: the host the model reference gives,
else `registry.ollama.ai` (where `ollama run llama3.1:8b` looks), whatever `ollama.registry`
the bytes came from. So a site's pull-through registry in front of registry.ollama.ai can be
`ollama.registry` without moving the model where the container's Ollama does not look.

The entry's version is the manifest digest: a re-tagged model is a new entry.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from yarl import URL

from ..errors import UpstreamError, UpstreamIntegrityError, UpstreamNotFound, UpstreamTooLarge
from ..resources import OllamaResource
from ..settings import OllamaSettings
from ..store import BlobSink, EntryDetails, EntryRequest, Expected, Fetch, FileSpec, Manifest
from ..util.limits import OLLAMA_LAYERS, OLLAMA_MANIFEST_BYTES
from .identity import canonical
from .transfer import Transfer

DEFAULT_REGISTRY_NAME = "registry.ollama.ai"
"""Ollama's own name for its default registry: the folder of unqualified models' manifests."""

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


class Ollama:
    def __init__(self, settings: OllamaSettings, transfer: Transfer) -> None:
        self.settings = settings
        self.transfer = transfer

    def request(self, resource: OllamaResource) -> Fetch[_OllamaResolver]:
        host, namespace, name, tag = resource.parts()
        configured = URL(self.settings.registry)
        if host is None or host == configured.authority:
            registry, trusted = configured, True
        else:
            registry, trusted = URL(f"https://{host}"), False
        identity = {
            "type": "Ollama",
            "registry": str(registry),
            "name": f"{namespace}/{name}",
            "tag": tag,
        }
        short = name if namespace == "library" else f"{namespace}/{name}"
        source = f"ollama://{short}:{tag}"
        if not trusted:
            source = f"ollama://{registry.authority}/{namespace}/{name}:{tag}"
        request = EntryRequest(key=canonical(identity), type="ollama", source=source)
        resolver = _OllamaResolver(
            self,
            registry,
            trusted,
            host or DEFAULT_REGISTRY_NAME,
            f"{namespace}/{name}",
            tag,
            source,
        )
        return Fetch(request, resolver)


class _OllamaResolver:
    def __init__(
        self,
        ollama: Ollama,
        registry: URL,
        trusted: bool,
        registry_name: str,
        repository: str,
        tag: str,
        source: str,
    ) -> None:
        self.ollama = ollama
        self.registry = registry
        self.trusted = trusted
        self.registry_name = registry_name
        """The folder under `manifests/`: the model's own registry, not a mirror's host."""
        self.repository = repository
        self.tag = tag
        self.source = source

    async def close(self) -> None:
        return None

    async def resolve(self) -> Manifest:
        url = self.registry / "v2" / self.repository / "manifests" / self.tag
        try:
            response = await self.ollama.transfer.get(
                url,
                name=self.source,
                trusted=self.trusted,
                headers={"Accept": MANIFEST_TYPES},
                limit=OLLAMA_MANIFEST_BYTES,
            )
        except UpstreamNotFound as exc:
            raise UpstreamNotFound(
                f"{self.source}: no such model or tag at {self.registry}"
            ) from exc
        body = response.body
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise UpstreamIntegrityError(
                f"{self.source}: manifest digest {digest}, the registry said {announced}"
            )
        layers = _blobs(body, self.source)
        manifest_path = f"manifests/{self.registry_name}/{self.repository}/{self.tag}"
        files = [
            FileSpec(
                path=manifest_path,
                expected=Expected(size=len(body), sha256=digest.removeprefix("sha256:")),
                data=body,
            )
        ]
        seen: set[str] = set()
        for layer_digest, size in layers:
            hex_digest = layer_digest.removeprefix("sha256:")
            if hex_digest in seen:
                continue
            seen.add(hex_digest)
            files.append(
                FileSpec(
                    path=f"blobs/sha256-{hex_digest}",
                    expected=Expected(size=size, sha256=hex_digest),
                    locator=layer_digest,
                )
            )
        details: EntryDetails = {
            "model": self.source,
            "manifest_digest": digest,
            "registry": str(self.registry),
        }
        return Manifest(version=digest, files=tuple(files), details=details)

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        url = self.registry / "v2" / self.repository / "blobs" / str(file.locator)
        await self.ollama.transfer.download(
            url, sink, name=f"{self.source} {file.locator}", trusted=self.trusted
        )


def _blobs(body: bytes, source: str) -> list[tuple[str, int]]:
    """The config blob and the layers a manifest names, as (digest, size)."""
    try:
        manifest: Any = json.loads(body)
        layers = manifest["layers"]
        too_many = OLLAMA_LAYERS.over(len(layers), f"{source}: the manifest")
        if too_many:
            raise UpstreamTooLarge(too_many)
        descriptors = [manifest["config"], *layers]
        blobs = [(str(d["digest"]), int(d["size"])) for d in descriptors]
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamError(
            f"{source}: the registry sent a manifest this daemon cannot read"
        ) from exc
    for digest, size in blobs:
        hex_digest = digest.removeprefix("sha256:")
        if not digest.startswith("sha256:") or len(hex_digest) != 64 or size < 0:
            raise UpstreamError(f"{source}: the manifest names an invalid blob {digest!r}")
        if any(c not in "0123456789abcdef" for c in hex_digest):
            raise UpstreamError(f"{source}: the manifest names an invalid blob {digest!r}")
    return blobs
