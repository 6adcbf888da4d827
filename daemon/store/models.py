"""The store's vocabulary: what is asked for, what upstream resolved it to, what is kept.

A caller asks for an `EntryRequest` (the canonical resource: its identity) and hands a
`Resolver` that knows how to reach upstream. The resolver answers with a `Manifest`: the
resolved version (an HF commit, an Ollama manifest digest, an S3 listing digest) and the
`FileSpec` of every file of the view. The store keeps an `Entry` per (request, version), and a
`StoredFile` per file of it; when a fetch ends it tells its hooks once, with a `FetchEnded`.
A source hands the request and its resolver together as a `Fetch` (a `FileFetch` for a
one-file entry read as it lands, with the file's spec).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypedDict, TypeVar


class EntryState(enum.StrEnum):
    PENDING = "pending"
    DOWNLOADING = "downloading"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"


@dataclass(frozen=True)
class EntryRequest:
    """What a caller wants cached. `key` is the canonical identity (JSON, no secrets)."""

    key: str
    type: str
    source: str
    resumable: str | None = field(default=None, compare=False)
    """The resource as JSON, when it needs no secret: a restarted daemon resumes it."""

    @property
    def request_key(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()


def entry_id_for(request_key: str, version: str) -> str:
    """An entry is one request at one resolved version: `main` moving on is a new entry."""
    return hashlib.sha256(f"{request_key}\n{version}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Crc:
    """A CRC of a whole file that upstream keeps: one of `CRC_ALGORITHMS`, by S3's names."""

    algorithm: str
    value: int


CRC_ALGORITHMS = ("CRC64NVME", "CRC32C", "CRC32")


@dataclass(frozen=True)
class Expected:
    """Digests upstream announced for a file; each given one is checked while it streams."""

    size: int
    sha256: str | None = None
    md5: str | None = None
    git_sha1: str | None = None
    multipart_etag: str | None = None  # S3 `"<md5 of part md5s>-N"`, checked with part_size
    part_size: int | None = None
    crc: Crc | None = None


@dataclass(frozen=True)
class FileSpec:
    """One file of a view. `alias` names an upstream object version (scoped to its source) so a
    re-fetch of unchanged content can find the blob without downloading it again."""

    path: str
    expected: Expected
    alias: str | None = None
    executable: bool = False
    locator: Any = field(default=None, compare=False)
    data: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def size(self) -> int:
        return self.expected.size


class SiteOrigin(TypedDict):
    """Where an entry built from the site store's manifest came from."""

    from_node: str
    first_downloaded_at: float


_RegistryFrom = TypedDict("_RegistryFrom", {"from": str}, total=False)
"""`from`, a keyword, in the one syntax that takes it: the registry's base URL fetched from."""


class EntryDetails(_RegistryFrom, total=False):
    """What an entry's source says about it beyond its version (shown by `GET
    /v1/resources`), one small set of keys per type; every key optional.

    The type says what this version writes. What a reader gets was kept as JSON (the index,
    written by earlier versions; the site store's manifests, by other nodes): so readers take
    keys with `.get` and convert what they use, and keys not listed here pass through."""

    # HF (`sources.huggingface`) and entries of the Hub endpoint (`sources.hub_upstream`)
    repo: str
    revision: str
    commit: str
    via: str
    """`/hf`: fetched for the Hub endpoint."""
    repo_type: str
    path: str
    """The one file of a Hub endpoint's file entry."""
    # S3
    locations: list[str]
    credential: str
    """Who read it, in words (`anonymous`, `access key AKIA... (s3.access_key_id)`)."""
    # Ollama
    model: str
    manifest_digest: str
    # Docker images (`engine.images`)
    name: str
    """The image's local name (also a registry entry's repository name)."""
    image_id: str
    pulled_by_daemon: bool
    """Only images that this daemon pulled are ever removed."""
    layers: int
    # The registry endpoint (`sources.registry`), with `from`; `registry` also Ollama's
    registry: str
    private: bool
    tag: str
    digest: str
    media_type: str
    # Any type, when it was built from the site store's manifest
    site_store: SiteOrigin


@dataclass(frozen=True)
class Manifest:
    """Upstream's answer for a request. `files` empty with `external_size`: an entry whose
    content lives elsewhere (a Docker image in the engine)."""

    version: str
    files: tuple[FileSpec, ...]
    details: EntryDetails = field(default_factory=lambda: EntryDetails())
    external_size: int | None = None


class BlobSink(Protocol):
    """Where a resolver writes a file's bytes: positional writes, resumable."""

    @property
    def size(self) -> int: ...

    def missing(self) -> list[tuple[int, int]]:
        """Byte ranges `[start, end)` not written yet (all of it, unless resuming)."""
        ...

    async def write(self, offset: int, data: bytes) -> None: ...


class Resolver(Protocol):
    async def resolve(self) -> Manifest:
        """Ask upstream what the request is now (metadata only, no file bytes)."""
        ...

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        """Write the bytes of `file` into `sink` (only its missing ranges)."""
        ...

    async def close(self) -> None:
        """Release what resolving and fetching held (clients); called once, at the end."""
        ...


R = TypeVar("R", bound=Resolver, covariant=True)


@dataclass(frozen=True)
class Fetch(Generic[R]):
    """What a source hands the store for a request: its identity, and who reaches upstream
    for it (typed as the source's own resolver, for callers that use more of it)."""

    request: EntryRequest
    resolver: R


@dataclass(frozen=True)
class FileFetch(Generic[R]):
    """The same for a one-file entry that is read while it lands (`Store.open_file`), with the
    spec of its one file: what its bytes must be, known before upstream is asked."""

    request: EntryRequest
    spec: FileSpec
    resolver: R


@dataclass(frozen=True)
class Progress:
    bytes_done: int = 0
    bytes_total: int = 0


@dataclass(frozen=True)
class Entry:
    id: str
    request_key: str
    type: str
    source: str
    request: str
    resumable: str | None
    version: str | None
    details: EntryDetails
    state: EntryState
    error: str | None
    size_bytes: int
    file_count: int
    created_at: float
    downloaded_at: float | None
    last_used_at: float | None
    hits: int
    pinned_by: tuple[str, ...]
    leases: int
    external: bool

    @property
    def pinned(self) -> bool:
        return bool(self.pinned_by)

    @property
    def in_use(self) -> bool:
        return self.leases > 0


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file of an entry as the index keeps it: `sha256` names its blob (None while the
    entry is still being filled and the file has none)."""

    path: str
    size: int
    sha256: str | None
    executable: bool


@dataclass(frozen=True)
class FetchEnded:
    """How one fetch of a request ended, told once to the store's fetch hooks
    (`Store.on_fetched`); a hit starts no fetch and tells nothing.

    `entry` is set when the fetch left its entry ready (filled now, or found ready here at the
    version upstream resolved to), `files` being its files; it is None when the fetch failed
    or was cut (`entry_id` then names the entry it was filling, or is None if upstream never
    answered)."""

    request: EntryRequest
    entry_id: str | None
    entry: Entry | None = None
    files: tuple[StoredFile, ...] = ()


@dataclass
class Lease:
    """A hold on a ready entry: it is not evicted while held. Release it when done."""

    entry: Entry
    lease_id: int
    hit: bool
    view: Path | None


@dataclass(frozen=True)
class TypeTotal:
    """Entries of one type in one state, and their bytes."""

    type: str
    state: str
    entries: int
    bytes: int


@dataclass(frozen=True)
class Scratch:
    """A job's writable scratch folder, as this process and as the Docker engine see it."""

    local: Path
    engine: Path


EvictHook = Callable[[Entry], Awaitable[None]]
FetchHook = Callable[[FetchEnded], None]
"""Told how a fetch ended; it only schedules its work (it runs inside the fetch's task)."""
