"""A multi-platform image built by hand over a registry's HTTP API: for each platform a layer
(a gzipped tar holding `/platform`), a config and an OCI manifest, then an OCI index naming
them, as `docker buildx --platform a,b --push` leaves it. Nothing runs in it: pull tests only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.request
from dataclasses import dataclass

from .ollama import push_blob

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Platform:
    architecture: str
    manifest: str  # digest
    config: str  # digest: the image id an engine gives it
    layer: str  # digest


@dataclass(frozen=True)
class PushedIndex:
    digest: str
    platforms: dict[str, Platform]  # by architecture


def _layer(text: str) -> tuple[bytes, str]:
    """A gzipped tar of one file, and the digest of the tar (the config's diff id)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("platform")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw = out.getvalue()
    return gzip.compress(raw, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()


def _put_manifest(registry: str, repository: str, reference: str, body: bytes, kind: str) -> str:
    request = urllib.request.Request(
        f"{registry}/v2/{repository}/manifests/{reference}",
        data=body,
        method="PUT",
        headers={"Content-Type": kind},
    )
    with urllib.request.urlopen(request, timeout=30):
        pass
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _descriptor(kind: str, digest: str, size: int, **more: object) -> dict[str, object]:
    return {"mediaType": kind, "digest": digest, "size": size, **more}


def push_index(
    registry: str, repository: str, tag: str, architectures: tuple[str, ...] = ("amd64", "arm64")
) -> PushedIndex:
    platforms, entries = {}, []
    for arch in architectures:
        layer, diff_id = _layer(f"{repository} for linux/{arch}\n")
        layer_digest = push_blob(registry, repository, layer)
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Cmd": ["cat", "/platform"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        ).encode()
        config_digest = push_blob(registry, repository, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": _descriptor(CONFIG, config_digest, len(config)),
                "layers": [_descriptor(LAYER, layer_digest, len(layer))],
            }
        ).encode()
        digest = _put_manifest(registry, repository, digest_of(manifest), manifest, MANIFEST)
        platforms[arch] = Platform(arch, digest, config_digest, layer_digest)
        platform = {"architecture": arch, "os": "linux"}
        entries.append(_descriptor(MANIFEST, digest, len(manifest), platform=platform))
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
    return PushedIndex(_put_manifest(registry, repository, tag, index, INDEX), platforms)


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()
