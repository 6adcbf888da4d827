"""Cache entries as the API shows them, and the store's maintenance reports (gc, verify)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from ...store import Entry as StoreEntry
from ...store import EntryState, Store
from ...store import SweepReport as StoreSweepReport
from ...store import VerifyReport as StoreVerifyReport
from ...util.wire import Instant, Omitted, body

EntryType = Literal["hf", "s3", "ollama", "image", "registry"]


@body
class Progress:
    """Bytes of the entry's files that are in the store, of all it needs."""

    bytes_done: int
    bytes_total: int

    @classmethod
    def of(cls, store: Store, entry: StoreEntry) -> Progress:
        """The running download's count; a ready entry is all done, any other none."""
        progress = store.progress(entry.id)
        if progress is not None:
            return cls(bytes_done=progress.bytes_done, bytes_total=progress.bytes_total)
        done = entry.size_bytes if entry.state == "ready" else 0
        return cls(bytes_done=done, bytes_total=entry.size_bytes)


@body
class EntryFile:
    """One file of an entry's view: its path in the view and the blob it links to."""

    path: str
    size: int
    sha256: str | None
    executable: bool


@body
class Entry:
    """One resource (or image) at one upstream version, and what holds it in the store.
    `path` is the read-only view while the entry is ready; `files` only when asked for."""

    id: str
    type: EntryType
    source: str
    state: EntryState
    version: str | None
    size_bytes: int
    file_count: int
    created_at: Instant
    downloaded_at: Instant
    expires_at: Instant
    last_used_at: Instant
    pinned: bool
    pinned_by: list[str]
    in_use: bool
    leases: int
    hits: int
    progress: Progress
    error: str | None
    path: str | None
    details: Mapping[str, Any]
    """The source's `EntryDetails`, documented open: the index serves what earlier versions and
    other nodes (through the site store) wrote, and a client reads it by key."""
    files: Omitted[list[EntryFile]] = None

    @classmethod
    def of(cls, store: Store, entry: StoreEntry, files: list[EntryFile] | None = None) -> Entry:
        view = store.view_path(entry)
        return cls(
            id=entry.id,
            # The store keeps each source's own word for its type, one of these (tests'
            # in-memory upstreams use others, served as they are).
            type=cast(EntryType, entry.type),
            source=entry.source,
            state=entry.state,
            version=entry.version,
            size_bytes=entry.size_bytes,
            file_count=entry.file_count,
            created_at=entry.created_at,
            downloaded_at=entry.downloaded_at,
            expires_at=store.expires_at(entry),
            last_used_at=entry.last_used_at,
            pinned=entry.pinned,
            pinned_by=list(entry.pinned_by),
            in_use=entry.in_use,
            leases=entry.leases,
            hits=entry.hits,
            progress=Progress.of(store, entry),
            error=entry.error,
            path=str(view) if view else None,
            details=entry.details,
            files=files,
        )


async def entry_files(store: Store, entry_id: str) -> list[EntryFile]:
    """Every file of an entry's view, by path."""
    return [
        EntryFile(path=f.path, size=f.size, sha256=f.sha256, executable=f.executable)
        for f in await store.files(entry_id)
    ]


@body
class EntryList:
    """Entries, oldest first."""

    resources: list[Entry]


@body
class SweepReport:
    """What a sweep removed: expired entries no one holds, then blobs no entry references."""

    entries_removed: int
    blobs_removed: int
    bytes_freed: int

    @classmethod
    def of(cls, report: StoreSweepReport) -> SweepReport:
        return cls(
            entries_removed=report.entries,
            blobs_removed=report.blobs,
            bytes_freed=report.bytes_freed,
        )


@body
class VerifyReport:
    """What re-hashing every blob found. Corrupt and missing blobs (by sha256) are dropped;
    the entries that held them fail, and are fetched again when next asked for."""

    blobs_checked: int
    bytes_checked: int
    corrupt: list[str]
    missing: list[str]
    entries_failed: list[str]

    @classmethod
    def of(cls, report: StoreVerifyReport) -> VerifyReport:
        return cls(
            blobs_checked=report.blobs_checked,
            bytes_checked=report.bytes_checked,
            corrupt=report.corrupt,
            missing=report.missing,
            entries_failed=report.entries_failed,
        )
