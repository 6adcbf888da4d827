"""A small listing, as the upstream Hub's repo info and recursive tree would give it."""

from __future__ import annotations

from typing import Any

from daemon.sources.hub_listing import Listing, RepoRef

COMMIT = "a" * 40
SHA = "b" * 64


def tree() -> list[dict[str, Any]]:
    return [
        {"type": "file", "oid": "1" * 40, "size": 7, "path": "config.json"},
        {"type": "directory", "oid": "2" * 40, "size": 0, "path": "tokenizer"},
        {"type": "file", "oid": "3" * 40, "size": 20, "path": "tokenizer/tokenizer.json"},
        {"type": "directory", "oid": "4" * 40, "size": 0, "path": "tokenizer/special"},
        {"type": "file", "oid": "5" * 40, "size": 9, "path": "tokenizer/special/tokens.txt"},
        {
            "type": "file",
            "oid": "6" * 40,
            "size": 1000,
            "path": "model.safetensors",
            "lfs": {"oid": SHA, "size": 1000, "pointerSize": 132},
            "xetHash": "c" * 64,
        },
    ]


def listing(**info: Any) -> Listing:
    upstream = {"id": "org/model", "sha": COMMIT, "private": False, "gated": False, **info}
    upstream["siblings"] = [{"rfilename": "config.json"}]
    return Listing.of(RepoRef("model", "org/model"), COMMIT, upstream, tree())
