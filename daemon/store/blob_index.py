"""The index's blob side: blobs and their aliases, garbage-collection candidates, usage
totals, and downloads in progress (resumable temp files).

Like index.py, every function takes a connection and runs on the database thread inside its
caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence


def has_blob(conn: sqlite3.Connection, sha256: str) -> bool:
    return conn.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (sha256,)).fetchone() is not None


def blob_for_alias(conn: sqlite3.Connection, alias: str, size: int) -> str | None:
    row = conn.execute(
        "SELECT sha256 FROM aliases WHERE alias = ? AND size = ?", (alias, size)
    ).fetchone()
    return row[0] if row else None


def add_blob(
    conn: sqlite3.Connection, sha256: str, size: int, now: float, aliases: Iterable[str]
) -> None:
    conn.execute(
        """INSERT OR IGNORE INTO blobs (sha256, size, created_at, verified_at, written_at)
           VALUES (?, ?, ?, ?, ?)""",
        (sha256, size, now, now, time.time()),
    )
    conn.executemany(
        "INSERT OR REPLACE INTO aliases (alias, sha256, size) VALUES (?, ?, ?)",
        [(alias, sha256, size) for alias in aliases],
    )


def blobs_written_since(conn: sqlite3.Connection, since: float) -> list[tuple[str, int]]:
    rows = conn.execute("SELECT sha256, size FROM blobs WHERE written_at >= ?", (since,))
    return [(r[0], r[1]) for r in rows]


def take_gc_candidates(conn: sqlite3.Connection, limit: int) -> tuple[int, list[str]]:
    """Look at up to `limit` blobs that may have lost their last file and forget them as
    candidates; returns how many were looked at and those that no file points at."""
    rows = conn.execute(
        """SELECT c.sha256, EXISTS (SELECT 1 FROM files f WHERE f.sha256 = c.sha256)
           FROM gc_candidates c LIMIT ?""",
        (limit,),
    ).fetchall()
    conn.executemany("DELETE FROM gc_candidates WHERE sha256 = ?", [(r[0],) for r in rows])
    return len(rows), [r[0] for r in rows if not r[1]]


def delete_blob_rows(conn: sqlite3.Connection, digests: Sequence[str]) -> None:
    conn.executemany("DELETE FROM blobs WHERE sha256 = ?", [(d,) for d in digests])


def all_blobs(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in conn.execute("SELECT sha256, size FROM blobs")]


def entries_using_blob(conn: sqlite3.Connection, sha256: str) -> list[str]:
    rows = conn.execute("SELECT DISTINCT entry_id FROM files WHERE sha256 = ?", (sha256,))
    return [r[0] for r in rows]


def forget_blob(conn: sqlite3.Connection, sha256: str, reason: str) -> list[str]:
    """A blob is gone or corrupt: unlink it from files, fail their entries, drop its row."""
    entries = entries_using_blob(conn, sha256)
    conn.execute("UPDATE files SET sha256 = NULL WHERE sha256 = ?", (sha256,))
    conn.executemany(
        "UPDATE entries SET state = 'failed', error = ? WHERE id = ? AND state = 'ready'",
        [(reason, e) for e in entries],
    )
    conn.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
    return entries


def usage(conn: sqlite3.Connection) -> tuple[int, int]:
    """(bytes, count) of every blob the store holds."""
    row = conn.execute("SELECT bytes, count FROM blob_totals").fetchone()
    return int(row[0]), int(row[1])


# -- downloads in progress (resumable temp files) --------------------------------------------


def get_download(conn: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT key, tmp_name, size, ranges FROM downloads WHERE key = ?", (key,)
    ).fetchone()
    return row


def save_download(
    conn: sqlite3.Connection,
    key: str,
    tmp_name: str,
    size: int,
    ranges: list[tuple[int, int]],
    now: float,
) -> None:
    conn.execute(
        """INSERT INTO downloads (key, tmp_name, size, ranges, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(key) DO UPDATE SET tmp_name = excluded.tmp_name, size = excluded.size,
               ranges = excluded.ranges, updated_at = excluded.updated_at""",
        (key, tmp_name, size, json.dumps(ranges), now),
    )


def delete_download(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM downloads WHERE key = ?", (key,))


def all_downloads(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return list(conn.execute("SELECT key, tmp_name, size, updated_at FROM downloads"))
