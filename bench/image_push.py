"""An image of several layers, made and pushed over the Distribution API without Docker.

Each layer is an uncompressed tar (Docker schema 2's `rootfs.diff.tar`) of one file of random
bytes, written to disk and hashed in one pass, then pushed in one streamed PUT: a 1.5 GiB
layer needs neither a `docker build` context nor gzip (random bytes do not compress, and a
link carries what it is given), and never sits in memory. The layer's digest is then also its
diff id, so the config is written without reading it again.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import tarfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar"
CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class PushedImage:
    name: str  # repository, e.g. bench/big
    tag: str
    digest: str  # the manifest's
    image_id: str  # the config's digest: what the engine calls the image
    layer_bytes: int  # config and layers: what a pull moves


def layer(path: Path, size: int, seed: int) -> tuple[str, int]:
    """A tar of one file of `size` random bytes at `path`; its sha256 digest and length."""
    info = tarfile.TarInfo(f"data/layer-{seed}.bin")
    info.size, info.mode, info.mtime = size, 0o644, 0
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for piece in chain([header], _random(size), [b"\0" * (-size % 512), b"\0" * 1024]):
            digest.update(piece)
            out.write(piece)
    return f"sha256:{digest.hexdigest()}", path.stat().st_size


def _random(size: int) -> Iterator[bytes]:
    """`size` random bytes in pieces of at most `CHUNK` (a generator: never all at once)."""
    left = size
    while left > 0:
        count = min(CHUNK, left)
        left -= count
        yield os.urandom(count)


def push(registry: str, name: str, tag: str, sizes: list[int], scratch: Path) -> PushedImage:
    """Layers of `sizes` bytes (and a config) pushed to `registry` (`http://host:port`) as
    `name:tag`; the layer files are deleted once pushed."""
    layers: list[dict[str, Any]] = []
    for index, size in enumerate(sizes):
        path = scratch / f"layer-{index}.tar"
        digest, length = layer(path, size, seed=index)
        _put_blob(registry, name, digest, path)
        path.unlink()
        layers.append({"mediaType": LAYER, "digest": digest, "size": length})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [item["digest"] for item in layers]},
        }
    ).encode()
    config_path = scratch / "config.json"
    config_path.write_bytes(config)
    config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
    _put_blob(registry, name, config_digest, config_path)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": config_digest, "size": len(config)},
            "layers": layers,
        }
    ).encode()
    _request(registry, "PUT", f"/v2/{name}/manifests/{tag}", manifest, MANIFEST)
    total = len(config) + sum(item["size"] for item in layers)
    digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    return PushedImage(name, tag, digest, config_digest, total)


def _put_blob(registry: str, name: str, digest: str, path: Path) -> None:
    headers = _request(registry, "POST", f"/v2/{name}/blobs/uploads/")
    location = urllib.parse.urlsplit(headers["Location"])
    query = f"{location.query}&" if location.query else ""
    target = f"{location.path}?{query}digest={urllib.parse.quote(digest)}"
    with path.open("rb") as body:
        _request(registry, "PUT", target, body, "application/octet-stream", path.stat().st_size)


def _request(
    registry: str,
    method: str,
    target: str,
    body: bytes | object = b"",
    content_type: str = "application/octet-stream",
    length: int | None = None,
) -> dict[str, str]:
    host = urllib.parse.urlsplit(registry).netloc
    connection = http.client.HTTPConnection(host, timeout=600)
    try:
        size = length if length is not None else len(body)  # type: ignore[arg-type]
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        connection.request(method, target, body=body, headers=headers)  # type: ignore[arg-type]
        response = connection.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {target}: {response.status} {response.reason}")
        return dict(response.headers)
    finally:
        connection.close()
