"""What the site store holds, where, and the manifest format: addressed by content.

    <prefix>/blobs/sha256/<hex>                         one object per distinct content
    <prefix>/manifests/<request key>/<entry id>.json    one per entry (a request at a version)
    <prefix>/fetching/<request key>                     a node's claim: "I am fetching this"

A blob is the store's blob, byte for byte, under the sha256 the store named it by. A manifest
is what a node needs to build the entry without asking upstream: the request's identity, the
version upstream resolved it to, each file's path, size, sha256 and mode, when the entry was
first downloaded (its ttl runs from then, site-wide), and, for files larger than one chunk,
the sha256 of each chunk, so that a reader can check every piece before the store sees it
(a damaged site object is then never served: the reader falls back to upstream at once).

Manifests are keyed by request, then entry: the read path lists one request's folder and takes
the newest, and a new version of the same request (a branch that moved on after the ttl) is a
new object, never an overwrite, so conditional writes can elect one writer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict, cast

from ..errors import UnsafeUpstream, UpstreamIntegrityError
from ..store import EntryDetails, validate_tree
from ..util.limits import ENTRY_FILES, SITE_MANIFEST_BYTES

FORMAT = 1
CHUNK = 8 * 1024 * 1024
"""Bytes per verified piece of a large blob: what a reader holds in memory per piece."""
MIN_CHUNK, MAX_CHUNK = 1024 * 1024, 64 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_ID = re.compile(r"^[0-9a-f]{32}$")


class ManifestFile(TypedDict):
    """One file in a manifest's JSON, as `SiteManifest.to_json` writes it."""

    path: str
    size: int
    sha256: str
    executable: bool
    chunk_size: NotRequired[int]
    chunks: NotRequired[list[str]]
    """With `chunk_size`, for a file larger than one piece only."""


class ManifestBody(TypedDict):
    """A manifest's JSON, as `SiteManifest.to_json` writes it (keys sorted). A reader takes
    it as another node's word: every value is converted and checked (`from_json`)."""

    format: int
    identity: str
    type: str
    source: str
    version: str
    entry_id: str
    first_downloaded_at: float
    details: NotRequired[EntryDetails]
    written_by: NotRequired[str]
    """Both absent from the manifests of some earlier nodes."""
    files: list[ManifestFile]


@dataclass(frozen=True)
class SiteFile:
    """One file of an entry, as a manifest names it."""

    path: str
    size: int
    sha256: str
    executable: bool = False
    chunk_size: int = CHUNK
    chunks: tuple[str, ...] = ()
    """The sha256 of each `chunk_size` piece, for files larger than one piece."""

    def pieces(self) -> list[tuple[int, int]]:
        """`[start, end)` of each verified piece (one piece: the whole file)."""
        if not self.chunks:
            return [(0, self.size)]
        step = self.chunk_size
        return [(start, min(self.size, start + step)) for start in range(0, self.size, step)]


@dataclass(frozen=True)
class SiteManifest:
    """One entry as the site store keeps it."""

    identity: str
    type: str
    source: str
    version: str
    entry_id: str
    first_downloaded_at: float
    files: tuple[SiteFile, ...]
    details: EntryDetails = field(default_factory=lambda: EntryDetails())
    written_by: str = ""

    def fresh(self, now: float, ttl: float) -> bool:
        return self.first_downloaded_at + ttl > now

    def to_json(self) -> bytes:
        body: ManifestBody = {
            "format": FORMAT,
            "identity": self.identity,
            "type": self.type,
            "source": self.source,
            "version": self.version,
            "entry_id": self.entry_id,
            "first_downloaded_at": self.first_downloaded_at,
            "details": self.details,
            "written_by": self.written_by,
            "files": [_item(f) for f in self.files],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, *, identity: str | None, where: str) -> SiteManifest:
        """Read and check a manifest (of the request whose `identity` is given: None takes
        any); anything off (past `site.manifest_bytes` or `entry.files`, another request's, a
        path that would leave the view or is named twice, chunks that do not add up) is
        `UpstreamIntegrityError`: never used, never trusted. Its size and its count of files
        are checked before the work they would cost."""
        too_large = SITE_MANIFEST_BYTES.over(len(data), f"{where}: the manifest")
        if too_large:
            raise UpstreamIntegrityError(too_large)
        try:
            body: ManifestBody = json.loads(data)
            if body["format"] != FORMAT or identity not in (None, body["identity"]):
                raise ValueError("another format or another request's manifest")
            files = _files(body["files"])
            manifest = cls(
                identity=str(body["identity"]),
                type=str(body["type"]),
                source=str(body["source"]),
                version=str(body["version"]),
                entry_id=str(body["entry_id"]),
                first_downloaded_at=float(body["first_downloaded_at"]),
                files=files,
                # another node's details, as its version wrote them (read by key, `.get`)
                details=cast(EntryDetails, dict(body.get("details") or {})),
                written_by=str(body.get("written_by") or ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError, UnsafeUpstream) as exc:
            raise UpstreamIntegrityError(
                f"{where}: not a manifest this node can use: {exc}"
            ) from exc
        if not _ENTRY_ID.match(manifest.entry_id):
            raise UpstreamIntegrityError(f"{where}: bad entry id {manifest.entry_id!r}")
        return manifest


def _item(file: SiteFile) -> ManifestFile:
    item: ManifestFile = {
        "path": file.path,
        "size": file.size,
        "sha256": file.sha256,
        "executable": file.executable,
    }
    if file.chunks:
        item["chunk_size"], item["chunks"] = file.chunk_size, list(file.chunks)
    return item


def _files(listed: Any) -> tuple[SiteFile, ...]:
    """Every file, within `entry.files`, each path one the store would take in a view (not
    absolute, no `..`, not twice): a manifest is another node's word, checked as upstream's."""
    if not isinstance(listed, list):
        raise TypeError("files is not a list")
    too_many = ENTRY_FILES.over(len(listed), "the manifest")
    if too_many:
        raise ValueError(too_many)
    files = tuple(_file(item) for item in listed)
    validate_tree(f.path for f in files)
    return files


def _file(item: ManifestFile) -> SiteFile:
    """A file as a manifest should list it; every value converted and checked all the same
    (it is foreign until then: a missing key or a wrong type is an error here)."""
    chunks = tuple(str(c) for c in item.get("chunks") or ())
    file = SiteFile(
        path=str(item["path"]),
        size=int(item["size"]),
        sha256=str(item["sha256"]),
        executable=bool(item.get("executable", False)),
        chunk_size=int(item.get("chunk_size", CHUNK)),
        chunks=chunks,
    )
    if file.size < 0 or not _SHA256.match(file.sha256):
        raise ValueError(f"{file.path}: bad size or sha256")
    if not all(_SHA256.match(c) for c in chunks):
        raise ValueError(f"{file.path}: bad chunk digest")
    if not chunks:
        if file.size > CHUNK:  # a reader would hold it whole in memory, unchecked till the end
            raise ValueError(f"{file.path}: {file.size} bytes without chunk digests")
        return file
    if not MIN_CHUNK <= file.chunk_size <= MAX_CHUNK:
        raise ValueError(f"{file.path}: chunk size {file.chunk_size} out of bounds")
    if len(chunks) != -(-file.size // file.chunk_size):  # counted, not listed: sizes are foreign
        raise ValueError(f"{file.path}: {len(chunks)} chunk digests for {file.size} bytes")
    return file


class Layout:
    """Keys under the site store's prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.blobs = f"{self.prefix}blobs/sha256/"
        self.manifests = f"{self.prefix}manifests/"
        self.markers = f"{self.prefix}fetching/"

    def blob(self, sha256: str) -> str:
        return self.blobs + sha256

    def manifest_folder(self, request_key: str) -> str:
        return f"{self.manifests}{request_key}/"

    def manifest(self, request_key: str, entry_id: str, first_downloaded_at: float) -> str:
        """One download of an entry: its first download's second is part of the key, so that
        the same entry downloaded again once its manifest's ttl is over gets a manifest of its
        own (a write never replaces one)."""
        return f"{self.entry_manifests(request_key, entry_id)}{int(first_downloaded_at)}.json"

    def entry_manifests(self, request_key: str, entry_id: str) -> str:
        """What every manifest of one entry's key starts with, whichever download it is of."""
        return f"{self.manifest_folder(request_key)}{entry_id}."

    def marker(self, request_key: str) -> str:
        return self.markers + request_key

    def blob_digest(self, key: str) -> str | None:
        """The sha256 a key under `blobs/` names, if it is one."""
        digest = key.removeprefix(self.blobs)
        return digest if key.startswith(self.blobs) and _SHA256.match(digest) else None
