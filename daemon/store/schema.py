"""The index's schema, as numbered migrations (daemon/util/db.py applies those a file lacks).

A daemon refuses an index whose schema is newer than it knows; an older one is migrated in
place at start.
"""

from __future__ import annotations

import sqlite3

from ..util.db import Migration

SCHEMA_V1 = """
CREATE TABLE entries (
    id TEXT PRIMARY KEY,
    request_key TEXT NOT NULL,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    request TEXT NOT NULL,
    resumable TEXT,
    version TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    error TEXT,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    file_count INTEGER NOT NULL DEFAULT 0,
    external INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    downloaded_at REAL,
    last_used_at REAL,
    hits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX entries_by_request ON entries(request_key, state, downloaded_at);
CREATE INDEX entries_by_age ON entries(state, downloaded_at);
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    verified_at REAL,
    written_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX blobs_by_written ON blobs(written_at);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE files (
    entry_id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT REFERENCES blobs(sha256),
    executable INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entry_id, path)
) WITHOUT ROWID;
CREATE INDEX files_by_blob ON files(sha256);
CREATE TABLE aliases (
    alias TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL REFERENCES blobs(sha256) ON DELETE CASCADE,
    size INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX aliases_by_blob ON aliases(sha256);
CREATE TABLE pins (
    entry_id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (entry_id, owner)
) WITHOUT ROWID;
CREATE TABLE leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX leases_by_entry ON leases(entry_id);
CREATE TABLE downloads (
    key TEXT PRIMARY KEY,
    tmp_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    ranges TEXT NOT NULL DEFAULT '[]',
    updated_at REAL NOT NULL
) WITHOUT ROWID
"""


def _schema_v2(conn: sqlite3.Connection) -> None:
    """Bookkeeping that spares the store a scan of every blob, which takes about a second
    with a million of them on the one index thread that everything waits on.

    - `blob_totals`: the blobs' total size and count, kept by triggers (space checks, status
      and metrics read it at every cold fetch or scrape);
    - `gc_candidates`: every blob that may have no file pointing at it: one just added (its
      entry may have gone before it was linked) or one a file stopped pointing at. Garbage
      collection looks at these only. Every blob of a store made before this migration is
      a candidate once.
    """
    for statement in (
        """CREATE TABLE blob_totals (
               id INTEGER PRIMARY KEY CHECK (id = 0),
               bytes INTEGER NOT NULL,
               count INTEGER NOT NULL)""",
        "INSERT INTO blob_totals SELECT 0, coalesce(sum(size), 0), count(*) FROM blobs",
        "CREATE TABLE gc_candidates (sha256 TEXT PRIMARY KEY) WITHOUT ROWID",
        "INSERT INTO gc_candidates SELECT sha256 FROM blobs",
        """CREATE TRIGGER blob_added AFTER INSERT ON blobs BEGIN
               UPDATE blob_totals SET bytes = bytes + new.size, count = count + 1;
               INSERT OR IGNORE INTO gc_candidates VALUES (new.sha256);
           END""",
        """CREATE TRIGGER blob_removed AFTER DELETE ON blobs BEGIN
               UPDATE blob_totals SET bytes = bytes - old.size, count = count - 1;
               DELETE FROM gc_candidates WHERE sha256 = old.sha256;
           END""",
        """CREATE TRIGGER file_removed AFTER DELETE ON files WHEN old.sha256 IS NOT NULL BEGIN
               INSERT OR IGNORE INTO gc_candidates VALUES (old.sha256);
           END""",
        """CREATE TRIGGER file_repointed AFTER UPDATE OF sha256 ON files
           WHEN old.sha256 IS NOT NULL AND old.sha256 IS NOT new.sha256 BEGIN
               INSERT OR IGNORE INTO gc_candidates VALUES (old.sha256);
           END""",
    ):
        conn.execute(statement)


MIGRATIONS: list[Migration] = [SCHEMA_V1, _schema_v2]
