"""What this node still owes the site store, kept across restarts (its own SQLite file).

    uploads     entries that became ready here and are not (fully) in the site store yet:
                a restarted daemon finishes them; `repairs` are blobs to overwrite (found
                damaged there), `leading` says this node claimed the entry's fetch for the site
    multipart   unfinished multipart uploads by blob: a restart continues one from the parts
                the site store already holds (it is asked, with ListParts) instead of anew
    chunks      the chunk digests of blobs already hashed here, so a blob shared by several
                entries is read once for its manifests
    meta        this node's name in the site store (its claims and manifests say who wrote them)

The store's index stays the store's: this file never says what is ready, only what to upload;
an entry that is gone or not ready when its turn comes is simply dropped.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..logs import get_logger
from ..util.db import Database, DatabaseDamaged

log = get_logger(__name__)

SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE uploads (
    entry_id TEXT PRIMARY KEY,
    request_key TEXT NOT NULL,
    leading INTEGER NOT NULL,
    manifest INTEGER NOT NULL,
    repairs TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL
);
CREATE TABLE multipart (
    sha256 TEXT PRIMARY KEY,
    upload_id TEXT NOT NULL,
    part_size INTEGER NOT NULL,
    started_at REAL NOT NULL
);
CREATE TABLE chunks (
    sha256 TEXT PRIMARY KEY,
    chunk_size INTEGER NOT NULL,
    digests TEXT NOT NULL,
    used_at REAL NOT NULL
)
"""
CHUNKS_KEPT = 7 * 86400.0
"""Chunk digests not used for this long are forgotten (the blob is likely gone)."""


@dataclass(frozen=True)
class Upload:
    """One entry to put into the site store."""

    entry_id: str
    request_key: str
    leading: bool
    manifest: bool  # write its manifest (False: it came from the site store, repairs only)
    repairs: frozenset[str]
    attempts: int = 0


@dataclass(frozen=True)
class Multipart:
    upload_id: str
    part_size: int


class Journal:
    def __init__(self, path: Path) -> None:
        self.db = Database(path, [SCHEMA_V1], name="site")
        self.node = ""

    async def open(self, now: float) -> None:
        try:
            await self.db.open()
        except DatabaseDamaged as exc:
            moved = await self.db.set_aside()
            log.error("site.journal_damaged", error=exc.message, moved_to=str(moved))
            await self.db.open()
        self.node = await self.db.run(_node_name)
        await self.db.run(
            lambda c: c.execute("DELETE FROM chunks WHERE used_at < ?", (now - CHUNKS_KEPT,))
        )

    async def close(self) -> None:
        await self.db.close()

    async def add(self, upload: Upload, now: float) -> None:
        """Owe `upload`; owing the same entry again merges the two."""

        def add(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT leading, manifest, repairs FROM uploads WHERE entry_id = ?",
                (upload.entry_id,),
            ).fetchone()
            leading, manifest, repairs = upload.leading, upload.manifest, set(upload.repairs)
            if row is not None:
                leading = leading or bool(row["leading"])
                manifest = manifest or bool(row["manifest"])
                repairs |= set(json.loads(row["repairs"]))
            conn.execute(
                """INSERT OR REPLACE INTO uploads
                   (entry_id, request_key, leading, manifest, repairs, attempts, added_at)
                   VALUES (?, ?, ?, ?, ?, 0, ?)""",
                (
                    upload.entry_id,
                    upload.request_key,
                    int(leading),
                    int(manifest),
                    json.dumps(sorted(repairs)),
                    now,
                ),
            )

        await self.db.run(add)

    async def next(self) -> Upload | None:
        """The upload to do first: entries other nodes may be waiting for, then the oldest."""
        row = await self.db.read(
            lambda c: c.execute(
                "SELECT * FROM uploads ORDER BY leading DESC, added_at LIMIT 1"
            ).fetchone()
        )
        if row is None:
            return None
        return Upload(
            row["entry_id"],
            row["request_key"],
            bool(row["leading"]),
            bool(row["manifest"]),
            frozenset(json.loads(row["repairs"])),
            row["attempts"],
        )

    async def pending(self) -> int:
        return int(
            await self.db.read(lambda c: c.execute("SELECT COUNT(*) FROM uploads").fetchone()[0])
        )

    async def done(self, entry_id: str) -> None:
        await self.db.run(
            lambda c: c.execute("DELETE FROM uploads WHERE entry_id = ?", (entry_id,))
        )

    async def failed(self, entry_id: str) -> None:
        await self.db.run(
            lambda c: c.execute(
                "UPDATE uploads SET attempts = attempts + 1 WHERE entry_id = ?", (entry_id,)
            )
        )

    # -- multipart uploads --------------------------------------------------------------------

    async def multipart(self, sha256: str) -> Multipart | None:
        row = await self.db.read(
            lambda c: c.execute(
                "SELECT upload_id, part_size FROM multipart WHERE sha256 = ?", (sha256,)
            ).fetchone()
        )
        return Multipart(row["upload_id"], row["part_size"]) if row is not None else None

    async def begin_multipart(self, sha256: str, upload: Multipart, now: float) -> None:
        await self.db.run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO multipart VALUES (?, ?, ?, ?)",
                (sha256, upload.upload_id, upload.part_size, now),
            )
        )

    async def end_multipart(self, sha256: str) -> None:
        await self.db.run(lambda c: c.execute("DELETE FROM multipart WHERE sha256 = ?", (sha256,)))

    # -- chunk digests ------------------------------------------------------------------------

    async def chunks(self, sha256: str, now: float) -> tuple[int, tuple[str, ...]] | None:
        def read(conn: sqlite3.Connection) -> tuple[int, tuple[str, ...]] | None:
            row = conn.execute(
                "SELECT chunk_size, digests FROM chunks WHERE sha256 = ?", (sha256,)
            ).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE chunks SET used_at = ? WHERE sha256 = ?", (now, sha256))
            return row["chunk_size"], tuple(json.loads(row["digests"]))

        return await self.db.run(read)

    async def save_chunks(
        self, sha256: str, chunk_size: int, digests: tuple[str, ...], now: float
    ) -> None:
        await self.db.run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?)",
                (sha256, chunk_size, json.dumps(list(digests)), now),
            )
        )


def _node_name(conn: sqlite3.Connection) -> str:
    """This node's name in the site store, the same across restarts."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'node'").fetchone()
    if row is not None:
        return str(row["value"])
    name = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    conn.execute("INSERT INTO meta VALUES ('node', ?)", (name,))
    return name
