"""The `/hf` routes in the daemon's OpenAPI document, as far as OpenAPI can say them.

A repo id is `{org}/{name}` here (the Hub also takes one-segment ids) and a file path one
segment (it may hold slashes), since OpenAPI path parameters cannot. Answers are the Hub's
shapes (answers.py); errors are `HubError` with the Hub's `X-Error-Code`. None of these routes
wants the API's token: a request's `Authorization` is a Hugging Face token, for upstream.
"""

from __future__ import annotations

from typing import Any

from .answers import GgufManifest, HubError, RepoInfo, RepoRefs, TreeEntries
from .problems import XET_STATUS
from .routes import PREFIX

RESPONSES: tuple[type, ...] = (RepoInfo, TreeEntries, RepoRefs, GgufManifest, HubError)
REF = "#/components/schemas/{model}"

_WORDS = {
    400: "Malformed request (a repo id, revision or path the Hub would not take)",
    401: "The Hub refused: no or a bad token, private (`RepoNotFound`) or gated (`GatedRepo`)",
    403: "The Hub refused this token",
    404: "`RepoNotFound`, `RevisionNotFound` or `EntryNotFound` (with `X-Repo-Commit`)",
    416: "The range asks for no byte of the file",
    XET_STATUS: "Always (`X-Error-Code: XetNotServed`): the cache serves plain HTTP only; "
    "set HF_HUB_DISABLE_XET=1",
    502: "The Hub is unreachable or answered badly, and the cache has no copy",
    504: "The Hub did not answer in time, and the cache has no copy",
    507: "No room in the store for the file",
}


def _errors(*statuses: int) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=HubError.__name__)}
    return {
        str(status): {
            "description": _WORDS[status],
            "content": {"application/json": {"schema": schema}},
        }
        for status in statuses
    }


def _param(name: str, description: str, *, enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if enum:
        schema = {"type": "string", "enum": enum}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


def _query(name: str, description: str) -> dict[str, Any]:
    schema = {"type": "string", "enum": ["true", "false"]}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_REPO = [
    _param("org", "The repo's owner"),
    _param("name", "The repo's name"),
]
_KIND = _param("kind", "Models or datasets", enum=["models", "datasets"])
_REVISION = _param("revision", "A branch, tag or commit (`main`)")
_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (
        ("X-Repo-Commit", "The commit the revision names"),
        ("ETag", "The git blob id, or the LFS sha256"),
        ("X-Linked-Etag", "LFS files: the sha256"),
        ("X-Linked-Size", "LFS files: the size"),
    )
}


def _json(model: type, description: str) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _info() -> dict[str, Any]:
    return {
        "summary": "Repo info at a revision (the Hub's)",
        "security": [],
        "parameters": [_query("blobs", "Sizes, blob ids and LFS digests of the siblings")],
        "responses": {"200": _json(RepoInfo, "The repo"), **_errors(400, 401, 403, 404, 502, 504)},
    }


def _resolve(method: str) -> dict[str, Any]:
    body = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    ok: dict[str, Any] = {"description": "The file (metadata only for HEAD)", "headers": _HEADERS}
    part: dict[str, Any] = {"description": "The range asked for", "headers": _HEADERS}
    if method == "get":
        ok["content"] = part["content"] = body
    statuses = (
        (400, 401, 403, 404, 416, 502, 504, 507)
        if method == "get"
        else (400, 401, 403, 404, 502, 504)
    )
    responses = {"200": ok, **({"206": part} if method == "get" else {}), **_errors(*statuses)}
    return {
        "summary": f"{method.upper()} a file: bytes as they reach the store",
        "security": [],
        "responses": responses,
    }


def paths() -> dict[str, Any]:
    api = f"{PREFIX}/api/{{kind}}/{{org}}/{{name}}"
    tree, paths_info = _listings()
    resolve = {
        "parameters": [*_REPO, _REVISION, _param("path", "The file's path in the repo")],
        "head": _resolve("head"),
        "get": _resolve("get"),
    }
    return {
        **_llama_cpp(api),
        api: {"parameters": [_KIND, *_REPO], "get": _info()},
        f"{api}/revision/{{revision}}": {"parameters": [_KIND, *_REPO, _REVISION], "get": _info()},
        f"{api}/tree/{{revision}}": {"parameters": [_KIND, *_REPO, _REVISION], "get": tree},
        f"{api}/tree/{{revision}}/{{path}}": {
            "parameters": [_KIND, *_REPO, _REVISION, _param("path", "A folder of the repo")],
            "get": tree,
        },
        f"{api}/paths-info/{{revision}}": {
            "parameters": [_KIND, *_REPO, _REVISION],
            "post": paths_info,
        },
        f"{PREFIX}/{{org}}/{{name}}/resolve/{{revision}}/{{path}}": resolve,
        f"{PREFIX}/datasets/{{org}}/{{name}}/resolve/{{revision}}/{{path}}": resolve,
    }


def _listings() -> tuple[dict[str, Any], dict[str, Any]]:
    """A folder's entries (`tree`) and the entries of given paths (`paths-info`)."""
    tree = {
        "summary": 'Entries under a folder (the Hub\'s, paged with `Link: rel="next"`)',
        "security": [],
        "parameters": [_query("recursive", "Every entry below, not only the children")],
        "responses": {
            "200": _json(TreeEntries, "One page of entries"),
            **_errors(400, 401, 403, 404, 502, 504),
        },
    }
    form = {
        "type": "object",
        "properties": {"paths": {"type": "array", "items": {"type": "string"}}},
    }
    paths_info = {
        "summary": "Entries of the given paths that exist",
        "security": [],
        "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": form}}},
        "responses": {
            "200": _json(TreeEntries, "The entries found"),
            **_errors(400, 401, 403, 404, 502, 504),
        },
    }
    return tree, paths_info


def _llama_cpp_operations() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The refs, GGUF manifest and Xet token operations llama.cpp and hf_xet ask for."""
    refs = {
        "summary": "The repo's branches (`main`, at the commit the cache serves)",
        "security": [],
        "responses": {"200": _json(RepoRefs, "The refs"), **_errors(400, 401, 403, 404, 502, 504)},
    }
    manifest = {
        "summary": "The GGUF file a quantization tag names (`latest`: Q4_K_M, else Q8_0), for "
        "llama.cpp's `-hf org/repo[:tag]`",
        "security": [],
        "responses": {
            "200": _json(GgufManifest, "The model file and its vision projector"),
            **_errors(400, 401, 403, 404, 502, 504),
        },
    }
    xet = {
        "summary": "A Xet read token: refused, with the reason",
        "security": [],
        "responses": _errors(404, XET_STATUS),
    }
    return refs, manifest, xet


def _llama_cpp(api: str) -> dict[str, Any]:
    refs, manifest, xet = _llama_cpp_operations()
    tag = _param("tag", "A quantization tag (`Q4_K_M`, any case) or `latest`")
    return {
        f"{api}/refs": {"parameters": [_KIND, *_REPO], "get": refs},
        f"{PREFIX}/v2/{{org}}/{{name}}/manifests/{{tag}}": {
            "parameters": [*_REPO, tag],
            "get": manifest,
        },
        f"{api}/xet-read-token/{{revision}}": {
            "parameters": [_KIND, *_REPO, _REVISION],
            "get": xet,
        },
    }
