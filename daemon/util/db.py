"""SQLite, one connection on one thread, off the event loop.

The store's index and the job records each live in a SQLite file in WAL mode. Every statement
runs on the database's own single thread, in the order it was submitted, so a function passed
to `Database.run` is a transaction no other writer can interleave with: that is what lets the
store commit a blob's rename and its row together (see store/index.py).

Schemas evolve by numbered migrations recorded in `PRAGMA user_version`; a database newer than
the code is refused rather than misread. A damaged file (truncated, overwritten) raises
`DatabaseDamaged` wherever SQLite notices; its owner sets it aside (`set_aside`) and starts
over rather than serve from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..errors import InsufficientSpace, StoreError

T = TypeVar("T")
Migration = Callable[[sqlite3.Connection], None] | str
_DAMAGE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


class DatabaseDamaged(StoreError):
    """SQLite found the file is not a sound database."""


class Database:
    def __init__(self, path: Path, migrations: Sequence[Migration], *, name: str) -> None:
        self.path = path
        self._migrations = list(migrations)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"db-{name}")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._submit(self._open)

    def _open(self) -> None:
        conn = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            self._migrate(conn)
            self._conn = conn
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if _damaged(exc):
                raise DatabaseDamaged(f"{self.path} is damaged: {exc}") from exc
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise

    async def set_aside(self) -> Path:
        """Close and rename a damaged file (and its WAL) out of the way, kept for inspection;
        the next `open` starts an empty database. Returns where it went."""
        await self._submit(self._close)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        moved = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                source.rename(moved.with_name(moved.name + suffix))
        return moved

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(self._migrations):
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this daemon knows "
                f"({len(self._migrations)}); upgrade nosana-cache or use another store"
            )
        for number, migration in enumerate(self._migrations[version:], start=version + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if isinstance(migration, str):
                    for statement in migration.split(";\n"):
                        if statement.strip():
                            conn.execute(statement)
                else:
                    migration(conn)
                conn.execute(f"PRAGMA user_version={number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    async def _submit(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` as one transaction on the database thread."""
        return await self._submit(lambda: self.transaction(fn))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only `fn(connection)` on the database thread, without a write lock."""

        def read() -> T:
            try:
                return fn(self._connection())
            except sqlite3.DatabaseError as exc:
                if _damaged(exc):
                    raise DatabaseDamaged(f"{self.path} is damaged: {exc}") from exc
                raise

        return await self._submit(read)

    def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Synchronous form of `run`, for code already on the database thread."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise InsufficientSpace(
                0, 0, f"the disk is full: {self.path} cannot be written"
            ) from exc
        return result

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path} is not open")
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._submit(self._close)
        self._executor.shutdown(wait=True)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _DAMAGE_CODES
