"""How the daemon's objects look as JSON: the fields SPEC.md names, and a few more."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..errors import InvalidInput
from ..store import Entry, Store


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 that says why not."""
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from exc


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def timestamp(seconds: float | None) -> str | None:
    """ISO 8601 in UTC (`2026-11-25T21:36:01Z`), or None."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def entry_json(store: Store, entry: Entry) -> dict[str, Any]:
    progress = store.progress(entry.id)
    if progress is None:
        done = entry.size_bytes if entry.state == "ready" else 0
        progress_json = {"bytes_done": done, "bytes_total": entry.size_bytes}
    else:
        progress_json = {"bytes_done": progress.bytes_done, "bytes_total": progress.bytes_total}
    view = store.view_path(entry)
    return {
        "id": entry.id,
        "type": entry.type,
        "source": entry.source,
        "state": entry.state.value,
        "version": entry.version,
        "size_bytes": entry.size_bytes,
        "file_count": entry.file_count,
        "created_at": timestamp(entry.created_at),
        "downloaded_at": timestamp(entry.downloaded_at),
        "expires_at": timestamp(store.expires_at(entry)),
        "last_used_at": timestamp(entry.last_used_at),
        "pinned": entry.pinned,
        "pinned_by": list(entry.pinned_by),
        "in_use": entry.in_use,
        "leases": entry.leases,
        "hits": entry.hits,
        "progress": progress_json,
        "error": entry.error,
        "path": str(view) if view else None,
        "details": entry.details,
    }
