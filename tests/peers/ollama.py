"""Ollama-format models pushed into the test bed's docker-registry over its HTTP API.

What registry.ollama.ai serves: a Docker v2 manifest whose config blob is Ollama's model
config and whose layers carry Ollama media types (model weights, template, params, license).
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from dataclasses import dataclass

MODEL = "application/vnd.ollama.image.model"
TEMPLATE = "application/vnd.ollama.image.template"
PARAMS = "application/vnd.ollama.image.params"
LICENSE = "application/vnd.ollama.image.license"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass(frozen=True)
class PushedModel:
    repository: str
    tag: str
    manifest: bytes
    blobs: dict[str, bytes]  # hex digest -> bytes (config and layers)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def _request(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        url, data=body if method != "GET" else None, method=method, headers=headers or {}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers)


def push_blob(registry: str, repository: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _status, headers = _request("POST", f"{registry}/v2/{repository}/blobs/uploads/")
    location = headers["Location"]
    if location.startswith("/"):
        location = registry + location
    separator = "&" if "?" in location else "?"
    _request(
        "PUT",
        f"{location}{separator}digest={digest}",
        data,
        {"Content-Type": "application/octet-stream"},
    )
    return digest


def push_model(
    registry: str, repository: str, tag: str, layers: dict[str, bytes], config: bytes | None = None
) -> PushedModel:
    """Push `layers` (media type -> bytes) and a config, then the manifest naming them."""
    config = config or json.dumps({"model_format": "gguf", "model_family": "llama"}).encode()
    blobs = {}
    config_digest = push_blob(registry, repository, config)
    blobs[config_digest.removeprefix("sha256:")] = config
    descriptors = []
    for media_type, data in layers.items():
        digest = push_blob(registry, repository, data)
        blobs[digest.removeprefix("sha256:")] = data
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(data)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": descriptors,
        }
    ).encode()
    _request(
        "PUT",
        f"{registry}/v2/{repository}/manifests/{tag}",
        manifest,
        {"Content-Type": MANIFEST_TYPE},
    )
    return PushedModel(repository, tag, manifest, blobs)
