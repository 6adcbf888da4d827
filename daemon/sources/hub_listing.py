"""A repo at one revision as the upstream Hub described it: its commit, its repo info and the
entries of its tree, kept as one small JSON document (a blob of the store like any other).

The Hub endpoint answers repo info, tree and paths-info requests from this document and finds
each file's size and digests in it, so once a revision is here no request about it needs the
upstream Hub. Upstream's own JSON is kept as it was (fields the daemon does not know survive
the round trip), except Xet fields: a plain HTTP mirror must never make a client try Xet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from ..errors import UpstreamError
from ..store import Expected, validate_relative_path

RepoType = Literal["model", "dataset"]
LISTING_FILE = "revision.json"
"""The one file of a revision entry's view."""
_XET_FIELDS = ("xetHash", "xet_hash", "xetEnabled")


@dataclass(frozen=True)
class RepoRef:
    """A repo on the Hub: its type and id (`org/name`)."""

    type: RepoType
    id: str

    @property
    def api(self) -> str:
        """The Hub's API path segment: `models`, `datasets`."""
        return f"{self.type}s"

    @property
    def prefix(self) -> str:
        """What precedes the id in the Hub's file URLs (`datasets/` for datasets)."""
        return "" if self.type == "model" else f"{self.type}s/"

    def __str__(self) -> str:
        return f"hf://{self.prefix}{self.id}"


@dataclass(frozen=True)
class Listing:
    """A repo at one revision: the commit, the repo info (without `siblings`) and every tree
    entry (files and folders, recursively), as upstream sent them."""

    repo: RepoRef
    commit: str
    info: dict[str, Any]
    entries: tuple[dict[str, Any], ...]
    _by_path: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(
        cls, repo: RepoRef, commit: str, info: dict[str, Any], entries: list[dict[str, Any]]
    ) -> Listing:
        """From upstream's answers; names that could leave a view are refused."""
        kept = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("type") not in ("file", "directory"):
                raise UpstreamError(f"{repo}: the Hub listed a tree entry it does not describe")
            validate_relative_path(str(entry.get("path", "")))
            kept.append(_without_xet(entry))
        info = _without_xet({k: v for k, v in info.items() if k != "siblings"})
        return cls(repo, commit, info, tuple(sorted(kept, key=lambda e: str(e["path"]))))

    @property
    def private(self) -> bool:
        """Unless upstream said `private: false`, the repo is taken as private: a Hub-like
        upstream that leaves the field out may well keep the repo from anyone without a token,
        and a cached file must not be handed out on the cache's guess."""
        return self.info.get("private") is not False

    @property
    def gated(self) -> bool:
        """Gated unless upstream said `gated: false` (the Hub names the gate: `auto`,
        `manual`), for the same reason."""
        return self.info.get("gated") is not False

    @property
    def public(self) -> bool:
        """Upstream said the repo is neither private nor gated: only then are its files
        anyone's, served without asking upstream and shared with the site. A listing that
        does not say (a Hub-like upstream that leaves the fields out) is not public: what is
        shared on that word cannot be taken back."""
        return not self.private and not self.gated

    def entry(self, path: str) -> dict[str, Any] | None:
        """The tree entry (file or folder) at `path`."""
        if not self._by_path:
            self._by_path.update((str(e["path"]), e) for e in self.entries)
        return self._by_path.get(path)

    def file(self, path: str) -> dict[str, Any] | None:
        entry = self.entry(path)
        return entry if entry is not None and entry["type"] == "file" else None

    @cached_property
    def files(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["type"] == "file"]

    def to_bytes(self) -> bytes:
        document = {
            "repo_type": self.repo.type,
            "repo": self.repo.id,
            "commit": self.commit,
            "info": self.info,
            "entries": list(self.entries),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Listing:
        document = json.loads(data)
        repo = RepoRef(document["repo_type"], document["repo"])
        return cls(repo, document["commit"], document["info"], tuple(document["entries"]))


def expected_of(entry: dict[str, Any]) -> Expected:
    """What a file's bytes must be: the LFS sha256 for LFS files, else the git blob id."""
    lfs = entry.get("lfs")
    if isinstance(lfs, dict) and lfs.get("oid"):
        return Expected(size=int(entry["size"]), sha256=str(lfs["oid"]))
    return Expected(size=int(entry["size"]), git_sha1=str(entry["oid"]))


def etag_of(entry: dict[str, Any]) -> str:
    """The Hub's ETag of a file: the LFS sha256, else the git blob id."""
    lfs = entry.get("lfs")
    if isinstance(lfs, dict) and lfs.get("oid"):
        return str(lfs["oid"])
    return str(entry["oid"])


def _without_xet(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in _XET_FIELDS}
