"""Job records on disk, so jobs survive a daemon restart.

A job's record (its definition, states, timings, cache hits, exit codes: `JobRecord`) is one
JSON document in `jobs.sqlite` beside the store's index; each op's output is kept in files
under `jobs/<job id>/` (`OpOutput`), and goes with the record when it expires.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import NotFound, StoreError
from ..logs import get_logger
from ..util.clock import Clock, SystemClock
from ..util.db import Database, DatabaseDamaged
from .models import JobRecord
from .output import OpOutput
from .states import JobState

SCHEMA_V1 = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,
    record TEXT NOT NULL
);
CREATE INDEX jobs_by_state ON jobs(state);
CREATE INDEX jobs_by_created ON jobs(created_at)
"""

log = get_logger(__name__)

RETENTION = 7 * 86400
"""Ended jobs, with their logs, are kept this long."""


class JobRecords:
    def __init__(self, root: Path, clock: Clock | None = None) -> None:
        self.root = root
        self.clock = clock or SystemClock()
        self.output = OpOutput(root / "jobs")
        self.db = Database(root / "jobs.sqlite", [SCHEMA_V1], name="jobs")

    async def open(self) -> None:
        """Open the records; a damaged file is set aside and kept, and the daemon starts with
        no job history rather than not at all. Containers of jobs it described keep running
        unattended; they carry the label io.nosana-cache.job for an operator to find."""
        self.output.root.mkdir(parents=True, exist_ok=True)
        try:
            await self.db.open()
        except DatabaseDamaged as exc:
            moved = await self.db.set_aside()
            log.error("jobs.records_damaged", error=exc.message, moved_to=str(moved))
            await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def save(self, record: JobRecord) -> None:
        text = record.to_json()
        row = (record.id, record.state.value, record.created, record.ended, text)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                """INSERT INTO jobs (id, state, created_at, ended_at, record) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET state = excluded.state,
                       ended_at = excluded.ended_at, record = excluded.record""",
                row,
            )

        await self.db.run(write)

    async def get(self, job_id: str) -> JobRecord:
        row = await self.db.read(
            lambda c: c.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        if row is None:
            raise NotFound(f"no job {job_id}")
        try:
            return JobRecord.from_json(row[0])
        except ValueError as exc:  # not JSON, or not a record (pydantic.ValidationError)
            raise StoreError(f"the record of job {job_id} cannot be read: {exc}") from exc

    async def exists(self, job_id: str) -> bool:
        row = await self.db.read(
            lambda c: c.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        return row is not None

    async def all(
        self, states: Collection[JobState] | None = None, limit: int = 200
    ) -> list[JobRecord]:
        """Jobs newest first (in `states` only, if given). A record that cannot be read is
        logged and left out, so that one bad record does not hide every other job."""

        def query(conn: sqlite3.Connection) -> list[Any]:
            if states:
                marks = ",".join("?" * len(states))
                sql = (
                    f"SELECT id, record FROM jobs WHERE state IN ({marks}) "
                    "ORDER BY created_at DESC LIMIT ?"
                )
                return list(conn.execute(sql, (*(s.value for s in states), limit)))
            sql = "SELECT id, record FROM jobs ORDER BY created_at DESC LIMIT ?"
            return list(conn.execute(sql, (limit,)))

        records = []
        for job_id, text in await self.db.read(query):
            try:
                records.append(JobRecord.from_json(text))
            except ValueError as exc:  # not JSON, or not a record (pydantic.ValidationError)
                log.error("jobs.record_unreadable", job_id=job_id, error=str(exc))
        return records

    async def counts(self) -> dict[str, int]:
        rows = await self.db.read(
            lambda c: list(c.execute("SELECT state, count(*) FROM jobs GROUP BY state"))
        )
        return {r[0]: r[1] for r in rows}

    async def expire(self, now: float | None = None) -> int:
        """Delete ended jobs older than the retention, and their output."""
        cutoff = (now or self.clock.now()) - RETENTION
        rows = await self.db.read(
            lambda c: list(c.execute("SELECT id FROM jobs WHERE ended_at < ?", (cutoff,)))
        )
        for (job_id,) in rows:
            await self.db.run(partial(_delete_job, job_id=job_id))
            await self.output.remove(job_id)
        return len(rows)


def _delete_job(conn: sqlite3.Connection, job_id: str) -> None:
    conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
