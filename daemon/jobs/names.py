"""Op ids as names: of containers, volumes, log files and scratch folders.

Nosana allows any text without a space as an op id (`gpt-oss:120b`, `org/model`, `..`, `模型`,
the empty string), while Docker wants `[A-Za-z0-9][A-Za-z0-9_.-]*` in container and volume
names and a path component may not be `..` or hold a `/`. `op_key` is the one way from an
op id to such a name:

- an id that is already safe (Docker's characters, a letter or digit first, at most 63
  characters) is its own key, so `server` stays `server` in `docker ps` and in file names;
- any other id becomes a readable prefix (its safe characters, others folded to `_`, at most
  40) and `_` plus 16 hex digits of the SHA-256 of the id: `gpt-oss:120b` →
  `gpt-oss_120b_3b1f...`.

`volume_name` and `container_name` build the Docker names of a job's volumes and containers
from such keys, so a volume named `a:b` and one named `a_b` stay apart.

Keys are injective: a safe id never ends like an encoded one (an id that does, say
`x_0123456789abcdef`, is encoded too), and two encoded ids share a key only if their hashes
share 64 bits. Keys are case-sensitive, as Docker and Linux paths are.
"""

from __future__ import annotations

import hashlib
import re

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_ENCODED = re.compile(r".*_[0-9a-f]{16}")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.-]+")
PREFIX = 40


def op_key(op_id: str) -> str:
    """A name for `op_id` that Docker takes in container and volume names and that is one
    path component; the id itself when it already is one."""
    if _SAFE.fullmatch(op_id) and not _ENCODED.fullmatch(op_id):
        return op_id
    prefix = _UNSAFE_RUN.sub("_", op_id)[:PREFIX].lstrip("_.-") or "op"
    digest = hashlib.sha256(op_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{prefix}_{digest}"


def volume_name(job_id: str, name: str) -> str:
    """The Docker volume of a job's named volume, or of an op's writable layer."""
    return f"nosana-cache-{job_id}-{op_key(name)}"


def container_name(job_id: str, op_id: str) -> str:
    return f"nosana-{job_id}-{op_key(op_id)}"
