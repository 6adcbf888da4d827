"""Canonical identities: the JSON that names what is cached, the same for equal requests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

ANONYMOUS = "anonymous"
"""The credential of a request that is read without one (S3's anonymous public reads)."""


def canonical(identity: Mapping[str, object]) -> str:
    """Sorted keys, no whitespace: equal requests give byte-equal keys (a JSON object of
    each source's own fields)."""
    return json.dumps(identity, sort_keys=True, separators=(",", ":"))


def fingerprint(secret: str | None) -> str | None:
    """Who fetched, without the secret: entries made with one token are not served to
    requests without it (a private repo must not leak through the cache)."""
    if not secret:
        return None
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def sorted_files(files: list[str] | None) -> list[str] | None:
    return sorted(set(files)) if files else None


def credential_of(key: str) -> str | None:
    """Who a request's entry is fetched as (an access key id, a token's fingerprint, the AWS
    chain), or None when it is fetched without credentials: the entries a site store may
    share between its nodes without `site.share_private`."""
    identity = json.loads(key)
    credential = identity.get("credential") if isinstance(identity, dict) else None
    return None if credential in (None, ANONYMOUS) else str(credential)
