"""Canonical identities: the JSON that names what is cached, the same for equal requests."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(identity: dict[str, Any]) -> str:
    """Sorted keys, no whitespace: equal requests give byte-equal keys."""
    return json.dumps(identity, sort_keys=True, separators=(",", ":"))


def fingerprint(secret: str | None) -> str | None:
    """Who fetched, without the secret: entries made with one token are not served to
    requests without it (a private repo must not leak through the cache)."""
    if not secret:
        return None
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def sorted_files(files: list[str] | None) -> list[str] | None:
    return sorted(set(files)) if files else None
