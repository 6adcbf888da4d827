"""One huggingface_hub operation, run by whichever huggingface_hub the interpreter has (see
hf_clients.py); prints one JSON line. Standard library, huggingface_hub and (for `config` and
`weights`) transformers only: the clients' venvs have nothing else.

    python hf_client_script.py '{"op": "snapshot", "repo": "org/name", ...}'
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any


def digests(folder: str) -> dict[str, str]:
    found = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def entry(item: Any) -> dict[str, Any]:
    lfs = getattr(item, "lfs", None)
    return {
        "path": item.path,
        "kind": type(item).__name__,
        "size": getattr(item, "size", None),
        "blob_id": getattr(item, "blob_id", None) or getattr(item, "tree_id", None),
        "lfs_sha256": (lfs["sha256"] if isinstance(lfs, dict) else lfs.sha256) if lfs else None,
    }


def with_transformers(op: dict[str, Any]) -> dict[str, Any]:
    """transformers' own way to the Hub, without torch: `AutoConfig.from_pretrained` (what
    every `from_pretrained` reads first) and `cached_file` for a weights file (what
    `from_pretrained` calls for `model.safetensors`)."""
    from transformers import AutoConfig  # type: ignore[import-not-found]  # its venv has it
    from transformers.utils import cached_file  # type: ignore[import-not-found]

    if op["op"] == "config":
        config = AutoConfig.from_pretrained(op["repo"], revision=op.get("revision"))
        return {"model_type": config.model_type, "hidden_size": config.hidden_size}
    path = cached_file(op["repo"], op["filename"], revision=op.get("revision"))
    with open(path, "rb") as handle:
        return {"sha256": hashlib.sha256(handle.read()).hexdigest(), "path": path}


def run(op: dict[str, Any]) -> dict[str, Any]:
    import huggingface_hub as hf

    if op["op"] in ("config", "weights"):
        return with_transformers(op)
    common = {"repo_type": op.get("repo_type", "model"), "revision": op.get("revision")}
    token = op.get("token", False)
    if op["op"] == "snapshot":
        path = hf.snapshot_download(op["repo"], token=token, **common)
        return {"files": digests(path), "path": path}
    if op["op"] == "download":
        path = hf.hf_hub_download(op["repo"], op["filename"], token=token, **common)
        with open(path, "rb") as handle:
            return {"sha256": hashlib.sha256(handle.read()).hexdigest(), "path": path}
    api = hf.HfApi(token=token)
    if op["op"] == "info":
        info: Any = api.repo_info(op["repo"], files_metadata=op.get("blobs", False), **common)
        siblings = [
            {"name": s.rfilename, "size": s.size, "blob_id": s.blob_id} for s in info.siblings or []
        ]
        return {"sha": info.sha, "siblings": siblings, "private": info.private}
    if op["op"] == "tree":
        items = api.list_repo_tree(
            op["repo"], path_in_repo=op.get("path"), recursive=op.get("recursive", True), **common
        )
        return {"entries": [entry(item) for item in items]}
    if op["op"] == "paths":
        found = api.get_paths_info(op["repo"], op["paths"], **common)
        return {"entries": [entry(item) for item in found]}
    raise ValueError(f"unknown operation {op['op']}")


def settle_xet_lookup() -> None:
    """Whether hf_xet is installed, looked up once here, before any download thread asks.

    huggingface_hub 1.33 looks it up lazily and not thread-safely (`utils/_runtime.py`
    `_get_version` stores "N/A" first, then asks `importlib.metadata`): `snapshot_download`'s
    threads ask `is_xet_available()` at once, and one that asks while another is still in the
    lookup reads "not installed" and fetches its file over plain HTTP, skipping the Xet
    metadata of a tree listing in its cache. Which thread that is depends on the machine's
    load, so the client would go to Xet only sometimes (2.x writes the answer after the
    lookup; 0.x looks everything up at import). Asked first, the answer is the true one."""
    from huggingface_hub.utils import _runtime

    _runtime.is_package_available("hf_xet")


def main() -> None:
    op = json.loads(sys.argv[1])
    try:
        settle_xet_lookup()
        answer = run(op)
    except Exception as exc:
        response = getattr(exc, "response", None)
        answer = {
            "error": type(exc).__name__,
            "status": getattr(response, "status_code", None),
            "message": str(exc)[:500],
        }
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
