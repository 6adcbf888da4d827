"""What the store already knows of a request, read without changing anything: for a dry run.

A request is cached when a ready entry would serve it (fresh, or pinned): nothing to fetch.
Otherwise the store may still know an earlier entry of it (expired and not yet swept, failed,
or downloading): its files that have no blob here are what fetching the same version again
would take. Whether upstream has moved on is not asked: a dry run reaches nothing beyond the
host.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .blob_index import has_blob
from .index import Expiry, entry_files, find_servable, latest_for_request
from .models import Entry


@dataclass(frozen=True)
class Lookup:
    entry: Entry | None
    """The entry that would serve the request, or else the latest the store knows of it."""
    cached: bool
    """`entry` would serve it now: a hit."""
    bytes_to_fetch: int | None
    """0 for a hit; for an earlier entry, its files' bytes that are not here; None when the
    store knows nothing of the request."""


def look_up(conn: sqlite3.Connection, request_key: str, now: float, expiry: Expiry) -> Lookup:
    servable = find_servable(conn, request_key, now, expiry)
    if servable is not None:
        return Lookup(servable, cached=True, bytes_to_fetch=0)
    latest = latest_for_request(conn, request_key)
    if latest is None:
        return Lookup(None, cached=False, bytes_to_fetch=None)
    if latest.external:  # an image: its bytes are the engine's
        return Lookup(latest, cached=False, bytes_to_fetch=latest.size_bytes)
    missing = sum(
        file.size
        for file in entry_files(conn, latest.id)
        if file.sha256 is None or not has_blob(conn, file.sha256)
    )
    return Lookup(latest, cached=False, bytes_to_fetch=missing)
