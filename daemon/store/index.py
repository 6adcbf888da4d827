"""The store's SQLite index: entries, their files, blobs, aliases, pins, leases, downloads.

Functions here take a connection and run on the database thread (daemon/util/db.py), each inside
the transaction its caller opened. The index is the truth about what is ready: a blob's file
is renamed into place and its row inserted in one such transaction, and an entry turns
`ready` only after every file row points at a blob row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .blob_index import has_blob
from .models import Entry, EntryDetails, EntryRequest, EntryState, FileSpec, StoredFile
from .schema import MIGRATIONS

__all__ = ["MIGRATIONS"]

_ENTRY_COLUMNS = """
    e.id, e.request_key, e.type, e.source, e.request, e.resumable, e.version, e.details,
    e.state, e.error, e.size_bytes, e.file_count, e.external, e.created_at, e.downloaded_at,
    e.last_used_at, e.hits,
    (SELECT group_concat(owner, ',') FROM pins p WHERE p.entry_id = e.id) AS pinned_by,
    (SELECT count(*) FROM leases l WHERE l.entry_id = e.id) AS leases
"""


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        id=row["id"],
        request_key=row["request_key"],
        type=row["type"],
        source=row["source"],
        request=row["request"],
        resumable=row["resumable"],
        version=row["version"],
        details=json.loads(row["details"]),
        state=EntryState(row["state"]),
        error=row["error"],
        size_bytes=row["size_bytes"],
        file_count=row["file_count"],
        created_at=row["created_at"],
        downloaded_at=row["downloaded_at"],
        last_used_at=row["last_used_at"],
        hits=row["hits"],
        pinned_by=tuple(sorted(row["pinned_by"].split(","))) if row["pinned_by"] else (),
        leases=row["leases"],
        external=bool(row["external"]),
    )


@dataclass(frozen=True)
class Expiry:
    """How the current settings turn an entry's times into its expiry, in SQL."""

    ttl: float
    from_last_use: bool

    def sql(self) -> str:
        if self.from_last_use:
            return f"(max(e.downloaded_at, coalesce(e.last_used_at, 0)) + {float(self.ttl)})"
        return f"(e.downloaded_at + {float(self.ttl)})"

    def of(self, entry: Entry) -> float | None:
        if entry.downloaded_at is None:
            return None
        start = entry.downloaded_at
        if self.from_last_use and entry.last_used_at:
            start = max(start, entry.last_used_at)
        return start + self.ttl


# -- entries ---------------------------------------------------------------------------------


def get_entry(conn: sqlite3.Connection, entry_id: str) -> Entry | None:
    row = conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries e WHERE e.id = ?", (entry_id,))
    found = row.fetchone()
    return _entry(found) if found else None


def list_entries(conn: sqlite3.Connection, states: Sequence[str] = ()) -> list[Entry]:
    where = f"WHERE e.state IN ({','.join('?' * len(states))})" if states else ""
    rows = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM entries e {where} ORDER BY e.created_at", tuple(states)
    )
    return [_entry(r) for r in rows]


def find_servable(
    conn: sqlite3.Connection, request_key: str, now: float, expiry: Expiry
) -> Entry | None:
    """The newest ready entry for a request that is fresh, or pinned (kept whatever its age)."""
    row = conn.execute(
        f"""SELECT {_ENTRY_COLUMNS} FROM entries e
            WHERE e.request_key = ? AND e.state = 'ready'
              AND ({expiry.sql()} > ? OR EXISTS (SELECT 1 FROM pins p WHERE p.entry_id = e.id))
            ORDER BY e.downloaded_at DESC LIMIT 1""",
        (request_key, now),
    ).fetchone()
    return _entry(row) if row else None


def latest_ready(conn: sqlite3.Connection, request_key: str) -> Entry | None:
    """The newest ready entry of a request, however old: what is left to serve while
    upstream cannot say what the request is now."""
    row = conn.execute(
        f"""SELECT {_ENTRY_COLUMNS} FROM entries e WHERE e.request_key = ? AND e.state = 'ready'
            ORDER BY e.downloaded_at DESC LIMIT 1""",
        (request_key,),
    ).fetchone()
    return _entry(row) if row else None


def take_hit(
    conn: sqlite3.Connection, request_key: str, holder: str, now: float, expiry: Expiry
) -> tuple[Entry, int] | None:
    """A lease on the request's servable entry, counted as a hit; None on a miss."""
    entry = find_servable(conn, request_key, now, expiry)
    if entry is None:
        return None
    lease_id = add_lease(conn, entry.id, holder, now)
    if lease_id is None:
        return None
    count_hit(conn, entry.id, now)
    return entry, lease_id


def latest_for_request(conn: sqlite3.Connection, request_key: str) -> Entry | None:
    """The most recent entry of a request in any state (for status of a running download)."""
    row = conn.execute(
        f"""SELECT {_ENTRY_COLUMNS} FROM entries e WHERE e.request_key = ?
            ORDER BY e.created_at DESC LIMIT 1""",
        (request_key,),
    ).fetchone()
    return _entry(row) if row else None


def begin_entry(
    conn: sqlite3.Connection,
    entry_id: str,
    request: EntryRequest,
    version: str,
    details: EntryDetails,
    files: Sequence[FileSpec],
    now: float,
    external: bool,
) -> None:
    """Create (or reset a failed) entry in `downloading` with its file list, no blobs yet."""
    conn.execute("DELETE FROM files WHERE entry_id = ?", (entry_id,))
    conn.execute(
        """INSERT INTO entries (id, request_key, type, source, request, resumable, version,
                                details, state, size_bytes, file_count, external, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'downloading', ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET state = 'downloading', error = NULL,
               details = excluded.details, size_bytes = excluded.size_bytes,
               file_count = excluded.file_count""",
        (
            entry_id,
            request.request_key,
            request.type,
            request.source,
            request.key,
            request.resumable,
            version,
            json.dumps(details),
            sum(f.size for f in files),
            len(files),
            int(external),
            now,
        ),
    )
    conn.executemany(
        "INSERT INTO files (entry_id, path, size, executable) VALUES (?, ?, ?, ?)",
        [(entry_id, f.path, f.size, int(f.executable)) for f in files],
    )


def set_state(
    conn: sqlite3.Connection, entry_id: str, state: EntryState, error: str | None = None
) -> None:
    conn.execute("UPDATE entries SET state = ?, error = ? WHERE id = ?", (state, error, entry_id))


def mark_ready(
    conn: sqlite3.Connection, entry_id: str, now: float, external_size: int | None
) -> bool:
    """Ready only if every file has its blob; False (and nothing changed) otherwise."""
    unlinked = conn.execute(
        """SELECT count(*) FROM files f LEFT JOIN blobs b ON b.sha256 = f.sha256
           WHERE f.entry_id = ? AND b.sha256 IS NULL""",
        (entry_id,),
    ).fetchone()[0]
    if unlinked:
        return False
    size = external_size
    if size is None:
        size = conn.execute(
            "SELECT coalesce(sum(size), 0) FROM files WHERE entry_id = ?", (entry_id,)
        ).fetchone()[0]
    conn.execute(
        """UPDATE entries SET state = 'ready', error = NULL, downloaded_at = ?, size_bytes = ?
           WHERE id = ?""",
        (now, size, entry_id),
    )
    return True


def renew(conn: sqlite3.Connection, entry_id: str, now: float) -> None:
    """Upstream confirmed an expired entry unchanged: it counts as downloaded now."""
    conn.execute("UPDATE entries SET downloaded_at = ? WHERE id = ?", (now, entry_id))


def count_hit(conn: sqlite3.Connection, entry_id: str, now: float) -> None:
    conn.execute(
        "UPDATE entries SET hits = hits + 1, last_used_at = ? WHERE id = ?", (now, entry_id)
    )


def mark_deleting(conn: sqlite3.Connection, entry_id: str) -> bool:
    """Mark an entry for deletion unless a pin or a lease holds it (checked in the same step)."""
    cursor = conn.execute(
        """UPDATE entries SET state = 'deleting' WHERE id = ? AND state != 'deleting'
             AND NOT EXISTS (SELECT 1 FROM pins WHERE entry_id = ?)
             AND NOT EXISTS (SELECT 1 FROM leases WHERE entry_id = ?)""",
        (entry_id, entry_id, entry_id),
    )
    return bool(cursor.rowcount)


def delete_entry(conn: sqlite3.Connection, entry_id: str) -> None:
    conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))


def expired_unheld(conn: sqlite3.Connection, now: float, expiry: Expiry) -> list[Entry]:
    """Expired entries that neither a pin nor a lease holds: the sweep's victims."""
    rows = conn.execute(
        f"""SELECT {_ENTRY_COLUMNS} FROM entries e
            WHERE e.state = 'ready' AND {expiry.sql()} <= ?
              AND NOT EXISTS (SELECT 1 FROM pins p WHERE p.entry_id = e.id)
              AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.entry_id = e.id)""",
        (now,),
    )
    return [_entry(r) for r in rows]


def evictable(conn: sqlite3.Connection, expiry: Expiry) -> list[Entry]:
    """Ready entries without pin or lease, oldest first: what space pressure may take."""
    rows = conn.execute(
        f"""SELECT {_ENTRY_COLUMNS} FROM entries e
            WHERE e.state IN ('ready', 'failed') AND e.external = 0
              AND NOT EXISTS (SELECT 1 FROM pins p WHERE p.entry_id = e.id)
              AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.entry_id = e.id)
            ORDER BY {expiry.sql()} - {float(expiry.ttl)}, e.created_at"""
    )
    return [_entry(r) for r in rows]


def bytes_freed_by(conn: sqlite3.Connection, entry_ids: Iterable[str]) -> int:
    """Bytes of the blobs that only these entries reference (what deleting them frees)."""
    ids = list(entry_ids)
    if not ids:
        return 0
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS victims (id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM victims")
    conn.executemany("INSERT OR IGNORE INTO victims VALUES (?)", [(i,) for i in ids])
    freed = conn.execute(
        """SELECT coalesce(sum(b.size), 0) FROM blobs b
           WHERE b.sha256 IN (SELECT f.sha256 FROM files f WHERE f.entry_id IN victims)
             AND NOT EXISTS (SELECT 1 FROM files f2 WHERE f2.sha256 = b.sha256
                             AND f2.entry_id NOT IN victims)"""
    ).fetchone()[0]
    conn.execute("DELETE FROM victims")
    return int(freed)


# -- files -----------------------------------------------------------------------------------


def entry_files(conn: sqlite3.Connection, entry_id: str) -> list[StoredFile]:
    rows = conn.execute(
        "SELECT path, size, sha256, executable FROM files WHERE entry_id = ? ORDER BY path",
        (entry_id,),
    )
    return [StoredFile(p, size, digest, bool(executable)) for p, size, digest, executable in rows]


def file_blob(conn: sqlite3.Connection, entry_id: str, path: str) -> str | None:
    """The sha256 of the blob a file of an entry points at (None while it has none)."""
    row = conn.execute(
        "SELECT sha256 FROM files WHERE entry_id = ? AND path = ?", (entry_id, path)
    ).fetchone()
    return row[0] if row else None


def link_file(conn: sqlite3.Connection, entry_id: str, path: str, sha256: str) -> bool:
    """Point a file of an entry at a blob, if that blob is (still) there."""
    if not has_blob(conn, sha256):
        return False
    conn.execute(
        "UPDATE files SET sha256 = ? WHERE entry_id = ? AND path = ?", (sha256, entry_id, path)
    )
    return True


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return str(row[0]) if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
        (key, value, value),
    )


def totals_by_type_and_state(conn: sqlite3.Connection) -> list[tuple[str, str, int, int]]:
    """(type, state, entries, bytes) for every combination present."""
    rows = conn.execute(
        """SELECT type, state, count(*), coalesce(sum(size_bytes), 0) FROM entries
           GROUP BY type, state"""
    )
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def counts_by_state(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT state, count(*) FROM entries GROUP BY state")
    return {r[0]: r[1] for r in rows}


# -- pins and leases -------------------------------------------------------------------------


def pin(conn: sqlite3.Connection, entry_id: str, owner: str, now: float) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO pins (entry_id, owner, created_at) VALUES (?, ?, ?)",
        (entry_id, owner, now),
    )


def unpin(conn: sqlite3.Connection, entry_id: str, owner: str) -> None:
    conn.execute("DELETE FROM pins WHERE entry_id = ? AND owner = ?", (entry_id, owner))


def pinned_by(conn: sqlite3.Connection, owner: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT entry_id FROM pins WHERE owner = ?", (owner,))]


def add_lease(conn: sqlite3.Connection, entry_id: str, holder: str, now: float) -> int | None:
    """A lease on a ready entry; None if the entry is not (or no longer) ready."""
    ready = conn.execute(
        "SELECT 1 FROM entries WHERE id = ? AND state = 'ready'", (entry_id,)
    ).fetchone()
    if not ready:
        return None
    cursor = conn.execute(
        "INSERT INTO leases (entry_id, holder, created_at) VALUES (?, ?, ?)",
        (entry_id, holder, now),
    )
    return cursor.lastrowid


def hold_entry(conn: sqlite3.Connection, entry_id: str, holder: str, now: float) -> int | None:
    """A lease on an entry that is ready or still downloading (a reader following its bytes as
    they land); None if it is failed or being deleted."""
    held = conn.execute(
        "SELECT 1 FROM entries WHERE id = ? AND state IN ('ready', 'downloading')", (entry_id,)
    ).fetchone()
    if not held:
        return None
    cursor = conn.execute(
        "INSERT INTO leases (entry_id, holder, created_at) VALUES (?, ?, ?)",
        (entry_id, holder, now),
    )
    return cursor.lastrowid


def release_lease(conn: sqlite3.Connection, lease_id: int) -> None:
    conn.execute("DELETE FROM leases WHERE id = ?", (lease_id,))


def lease_holders(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
    return [(r[0], r[1], r[2]) for r in conn.execute("SELECT id, entry_id, holder FROM leases")]
