"""The Hub's JSON, as this endpoint serves it: repo info, tree entries, errors.

Declared like the API's bodies (daemon/util/wire.py), so the OpenAPI document describes what is
served. Repo info and tree entries are the upstream Hub's own objects: the fields clients read
are declared, and whatever else upstream sent (`cardData`, `lastModified`, `lastCommit`...)
passes through as it came, so a client sees what it would see at the Hub.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel

from ..sources.hub_listing import ListedEntry, Listing
from ..util.wire import Omitted, body


@body
class HubError:
    """A refusal, as the Hub words it (its code is in `X-Error-Code`)."""

    error: str


@body
class SiblingLfs:
    size: int
    sha256: str
    pointerSize: int


@body
class Sibling:
    """A file of the repo; `size`, `blobId` and `lfs` with `?blobs=true`."""

    rfilename: str
    size: Omitted[int] = None
    blobId: Omitted[str] = None
    lfs: Omitted[SiblingLfs] = None


class RepoInfo(BaseModel):
    """`GET /api/{models|datasets}/{repo}[/revision/{rev}]`: the repo at one commit (`sha`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    sha: str
    private: bool
    gated: bool | str
    siblings: list[Sibling]

    @classmethod
    def of(cls, listing: Listing, *, blobs: bool) -> RepoInfo:
        info = dict(listing.info)
        fields: dict[str, Any] = {
            **info,
            "id": str(info.get("id") or listing.repo.id),
            "sha": listing.commit,
            "private": listing.private,
            "gated": info.get("gated") or False,
            "siblings": [_sibling(entry, blobs) for entry in listing.files],
        }
        return cls(**fields)


class TreeLfs(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    oid: str
    size: int
    pointerSize: Omitted[int] = None


class TreeEntry(BaseModel):
    """One entry of `tree` and `paths-info`: a file (with `lfs` when it is one) or a folder."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Literal["file", "directory"]
    oid: str
    size: int
    path: str
    lfs: Omitted[TreeLfs] = None


class TreeEntries(RootModel[list[TreeEntry]]):
    """`tree` and `paths-info` answers: a list of entries."""


@body
class GitRef:
    """A branch or tag: its name, full ref and the commit it points at."""

    name: str
    ref: str
    targetCommit: str


@body
class RepoRefs:
    """`GET /api/{models|datasets}/{repo}/refs`, in the Hub's shape (llama.cpp reads the
    `main` branch's `targetCommit`)."""

    branches: list[GitRef]
    converts: list[GitRef]
    tags: list[GitRef]

    @classmethod
    def of(cls, listing: Listing, branch: str) -> RepoRefs:
        main = GitRef(name=branch, ref=f"refs/heads/{branch}", targetCommit=listing.commit)
        return cls(branches=[main], converts=[], tags=[])


@body
class GgufFile:
    """A GGUF file of the repo, as the Hub's manifest for llama.cpp names it."""

    rfilename: str
    size: int
    blobId: str
    lfs: Omitted[SiblingLfs] = None

    @classmethod
    def of(cls, entry: ListedEntry) -> GgufFile:
        lfs = _sibling(entry, True).lfs
        return cls(rfilename=entry.path, size=entry.size, blobId=entry.oid, lfs=lfs)


@body
class GgufManifest:
    """`GET /v2/{repo}/manifests/{tag}`: the model file a quantization tag names
    (`ggufFile`) and its vision projector (`mmprojFile`), what llama.cpp reads."""

    ggufFile: GgufFile
    mmprojFile: Omitted[GgufFile] = None


def _sibling(entry: ListedEntry, blobs: bool) -> Sibling:
    if not blobs:
        return Sibling(rfilename=entry.path)
    lfs = entry.lfs
    return Sibling(
        rfilename=entry.path,
        size=entry.size,
        blobId=entry.oid,
        lfs=SiblingLfs(size=lfs.size, sha256=lfs.sha256, pointerSize=lfs.pointer_size or 0)
        if lfs is not None
        else None,
    )
