"""A repo at one revision as the upstream Hub described it: its commit, its repo info and the
entries of its tree, kept as one small JSON document (a blob of the store like any other).

The Hub endpoint answers repo info, tree and paths-info requests from this document and finds
each file's size and digests in it, so once a revision is here no request about it needs the
upstream Hub. Upstream's own JSON is kept as it was (fields the daemon does not know survive
the round trip), except Xet fields: a plain HTTP mirror must never make a client try Xet.
Each tree entry is read once, where the document is parsed, into a `ListedEntry`: the fields
the daemon uses, typed, beside upstream's object as it came (what the endpoint serves).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from ..errors import UpstreamError
from ..store import Expected, validate_relative_path

RepoType = Literal["model", "dataset"]
EntryType = Literal["file", "directory"]
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
class Lfs:
    """An LFS file's pointer, as the Hub lists it: the sha256 and size of the content."""

    sha256: str
    size: int
    pointer_size: int | None


@dataclass(frozen=True)
class ListedEntry:
    """One entry of a repo's tree (a file or a folder), as the listing holds it."""

    path: str
    type: EntryType
    oid: str
    """The git blob id of a file (of a folder: its tree id)."""
    size: int
    lfs: Lfs | None
    raw: Mapping[str, Any] = field(repr=False, hash=False)
    """Upstream's object as it came (without Xet fields): what the tree answers serve, so
    fields the daemon does not know reach clients as the Hub sent them."""

    @classmethod
    def of(cls, raw: object, repo: RepoRef) -> ListedEntry:
        """From upstream's tree object; one that does not describe a file or folder, or whose
        name could leave a view, is refused."""
        if not isinstance(raw, dict) or raw.get("type") not in ("file", "directory"):
            raise UpstreamError(f"{repo}: the Hub listed a tree entry it does not describe")
        path = str(raw.get("path", ""))
        validate_relative_path(path)
        kept = {k: v for k, v in raw.items() if k not in _XET_FIELDS}
        if raw["type"] == "directory":
            size = _count(raw.get("size", 0), repo, path)
            return cls(path, "directory", str(raw.get("oid", "")), size, None, kept)
        oid = raw.get("oid")
        if not isinstance(oid, str) or not oid:
            raise UpstreamError(f"{repo}: the Hub listed {path} with no blob id")
        size = _count(raw.get("size"), repo, path)
        return cls(path, "file", oid, size, _lfs_of(raw.get("lfs"), size, repo, path), kept)

    @property
    def is_file(self) -> bool:
        return self.type == "file"

    @property
    def etag(self) -> str:
        """The Hub's ETag of a file: the LFS sha256, else the git blob id."""
        return self.lfs.sha256 if self.lfs is not None else self.oid

    @property
    def expected(self) -> Expected:
        """What a file's bytes must be: the LFS sha256 for LFS files, else the git blob id."""
        if self.lfs is not None:
            return Expected(size=self.size, sha256=self.lfs.sha256)
        return Expected(size=self.size, git_sha1=self.oid)


@dataclass(frozen=True)
class Listing:
    """A repo at one revision: the commit, the repo info (without `siblings`) and every tree
    entry (files and folders, recursively), as upstream sent them."""

    repo: RepoRef
    commit: str
    info: dict[str, Any]
    entries: tuple[ListedEntry, ...]
    _by_path: dict[str, ListedEntry] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, repo: RepoRef, commit: str, info: dict[str, Any], entries: list[Any]) -> Listing:
        """From upstream's answers; names that could leave a view are refused."""
        kept = sorted((ListedEntry.of(entry, repo) for entry in entries), key=lambda e: e.path)
        info = {k: v for k, v in info.items() if k != "siblings" and k not in _XET_FIELDS}
        return cls(repo, commit, info, tuple(kept))

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

    def entry(self, path: str) -> ListedEntry | None:
        """The tree entry (file or folder) at `path`."""
        if not self._by_path:
            self._by_path.update((e.path, e) for e in self.entries)
        return self._by_path.get(path)

    def file(self, path: str) -> ListedEntry | None:
        entry = self.entry(path)
        return entry if entry is not None and entry.is_file else None

    @cached_property
    def files(self) -> list[ListedEntry]:
        return [e for e in self.entries if e.is_file]

    def to_bytes(self) -> bytes:
        document = {
            "repo_type": self.repo.type,
            "repo": self.repo.id,
            "commit": self.commit,
            "info": self.info,
            "entries": [e.raw for e in self.entries],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Listing:
        document = json.loads(data)
        repo = RepoRef(document["repo_type"], document["repo"])
        entries = tuple(ListedEntry.of(e, repo) for e in document["entries"])
        return cls(repo, document["commit"], document["info"], entries)


def _count(value: object, repo: RepoRef, path: str) -> int:
    """A size as upstream gave it (a number, or its digits), never negative."""
    try:
        count = int(value) if isinstance(value, int | float | str) else -1
    except (ValueError, OverflowError):
        count = -1
    if count < 0:
        raise UpstreamError(f"{repo}: the Hub listed {path} with no size")
    return count


def _lfs_of(lfs: object, size: int, repo: RepoRef, path: str) -> Lfs | None:
    if not isinstance(lfs, dict) or not lfs.get("oid"):
        return None
    pointer = lfs.get("pointerSize")
    pointer_size = None if pointer is None else _count(pointer, repo, path)
    return Lfs(str(lfs["oid"]), _count(lfs.get("size", size), repo, path), pointer_size)
