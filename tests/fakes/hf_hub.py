"""A Hugging Face Hub that behaves like the real one, for tests (TESTBED.md).

Two servers, as on the real Hub: the hub itself (`/api/models/...`, `/{repo}/resolve/...`) and
a content host that LFS files redirect to (a different port: a different origin, so tests can
check that the token never leaves the hub). What it implements:

- `GET /api/{models|datasets}/{repo}[/revision/{rev}]` with `sha` and `siblings`,
  `?blobs=true` adding `size`, `blobId` and `lfs{size, sha256, pointerSize}`;
- `GET /api/{models|datasets}/{repo}/tree/{rev}[/{path}]?recursive=true`, paged with
  `Link: rel="next"`; `POST .../paths-info/{rev}` with `paths` in a form;
- `HEAD|GET /[datasets/]{repo}/resolve/{rev}/{path}`: small files inline with `ETag` = git blob
  id; LFS files `302` to the content host with `X-Linked-Etag` (sha256) and `X-Linked-Size`;
- errors as `X-Error-Code`: `RepoNotFound` (401 without a token, 404), `RevisionNotFound`,
  `EntryNotFound` (with `X-Repo-Commit`), `GatedRepo` (401 without a token);
- the content host honours `Range` and takes injected faults (see faults.py); with a `bridge`
  (cas_bridge.py) LFS files redirect there instead, to signed URLs that expire, as the real
  Hub's do;
- per repo, the ways of Hub-like upstreams (`HubRepo.says_openness`, `bad_token_404`,
  `bad_token_login`, `next_link`).
It never sends Xet headers, so clients use plain HTTP. A repo committed with `xet=True` has
`xetHash` in its tree entries (as the Hub's, for files in Xet storage), and the hub answers
`xet-read-token` with a token for a Xet CAS host of its own that only counts what reaches it
(`cas_traffic`): a client that went there has left plain HTTP.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from .cas_bridge import CasBridge
from .content import Content
from .faults import Faults, Traffic, send_content
from .server import ThreadedServers

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n"


@dataclass
class HubFile:
    path: str
    content: Content
    lfs: bool

    def pointer(self) -> bytes:
        return LFS_POINTER.format(sha=self.content.sha256, size=self.content.size).encode()

    @property
    def oid(self) -> str:
        """The git blob id: of the pointer file for LFS files, of the bytes otherwise."""
        if self.lfs:
            return Content.of(self.pointer()).git_blob_id()
        return self.content.git_blob_id()


@dataclass
class HubRepo:
    repo_id: str
    commits: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    private: bool = False
    xet: bool = False
    # Switches for Hub-like upstreams that are not quite the Hub (set them on the repo):
    says_openness: bool = True
    """False: the repo info leaves out `private` and `gated`."""
    bad_token_404: bool = False
    """True: a wrong token is answered with a bare 404 (no `X-Error-Code`)."""
    bad_token_login: bool = False
    """True: a wrong token is redirected to a login page (as a mirror behind a portal)."""
    next_link: str | None = None
    """The `Link: rel="next"` of the tree's first page, wherever it points."""

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.commits:
            return revision
        matches = [sha for sha in self.commits if len(revision) >= 7 and sha.startswith(revision)]
        return matches[0] if len(matches) == 1 else None


class FakeHub:
    """The hub and its content host, each on a free loopback port."""

    def __init__(
        self,
        servers: ThreadedServers,
        *,
        token: str = "hf_test_token",
        bridge: CasBridge | None = None,
    ) -> None:
        self.token = token
        self.bridge = bridge
        """Where LFS files redirect to, signed and expiring, instead of the content host."""
        self.repos: dict[str, HubRepo] = {}
        self.faults: dict[str, Faults] = {}
        self.traffic = Traffic()
        self.cdn_traffic = Traffic()
        self.tree_page_size = 50
        self._listed: tuple[object, list[dict[str, object]]] = (None, [])
        self.down = False
        self.url = servers.serve(self._hub_app())
        self.cdn_url = servers.serve(self._cdn_app())
        self.cas_traffic = Traffic()
        self.cas_url = servers.serve(self._cas_app())
        self._by_sha: dict[str, Content] = {}

    # -- building repos -------------------------------------------------------------------

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes | Content],
        *,
        lfs: set[str] | None = None,
        branch: str = "main",
        gated: bool = False,
        private: bool = False,
        keep: bool = False,
        repo_type: str = "model",
        xet: bool = False,
    ) -> str:
        """Commit `files` to `branch` (replacing the tree, or on top of it with keep=True)."""
        key = repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"
        repo = self.repos.setdefault(key, HubRepo(repo_id, gated=gated, private=private))
        repo.xet = repo.xet or xet
        base = dict(repo.commits.get(repo.refs.get(branch, ""), {})) if keep else {}
        lfs = (
            lfs
            if lfs is not None
            else {p for p in files if p.endswith((".bin", ".safetensors", ".gguf"))}
        )
        for path, data in files.items():
            content = data if isinstance(data, Content) else Content.of(data)
            base[path] = HubFile(path, content, path in lfs)
            if path in lfs:
                self._by_sha[content.sha256] = content
        digest = hashlib.sha1(repr(sorted((p, f.oid) for p, f in base.items())).encode())
        digest.update(str(len(repo.commits)).encode())
        sha = digest.hexdigest()
        repo.commits[sha] = base
        repo.refs[branch] = sha
        return sha

    def set_faults(self, content: Content, faults: Faults) -> None:
        self.faults[content.sha256] = faults

    def file_url(self, repo_id: str, path: str, revision: str = "main") -> str:
        return f"{self.url}/{repo_id}/resolve/{revision}/{quote(path)}"

    # -- the hub ------------------------------------------------------------------------

    def _hub_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count(self.traffic)])
        repo = r"{repo:[^/]+(?:/[^/]+)?}"
        api = f"/api/{{kind:models|datasets}}/{repo}"
        app.router.add_get(f"{api}/revision/{{rev}}", self._info)
        app.router.add_get(f"{api}/tree/{{rev}}", self._tree)
        app.router.add_get(f"{api}/tree/{{rev}}/{{path:.+}}", self._tree)
        app.router.add_post(f"{api}/paths-info/{{rev}}", self._paths_info)
        app.router.add_get(f"{api}/xet-read-token/{{rev}}", self._xet_token)
        app.router.add_get(api, self._info)
        resolve = f"{repo}/resolve/{{rev}}/{{path:.+}}"
        app.router.add_route("*", f"/{{kind:datasets}}/{resolve}", self._resolve)
        app.router.add_route("*", f"/{resolve}", self._resolve)
        return app

    def _count(self, traffic: Traffic) -> Any:
        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            traffic.requests[f"{request.method} {request.path}"] += 1
            traffic.authorizations.append(request.headers.get("Authorization", ""))
            if self.down:
                return web.Response(status=503, text="hub down")
            response: web.StreamResponse = await handler(request)
            return response

        return count

    def _error(
        self, status: int, code: str, message: str, commit: str | None = None
    ) -> web.Response:
        headers = {"X-Error-Code": code, "X-Error-Message": message}
        if commit:
            headers["X-Repo-Commit"] = commit
        return web.json_response({"error": message}, status=status, headers=headers)

    def _authorized(self, request: web.Request) -> bool | None:
        """True: valid token; False: a wrong token; None: no token."""
        given = request.headers.get("Authorization")
        if not given:
            return None
        return given == f"Bearer {self.token}"

    def _find(self, request: web.Request, *, files: bool) -> tuple[HubRepo, str] | web.Response:
        kind = request.match_info.get("kind", "models")
        key = request.match_info["repo"]
        repo = self.repos.get(key if kind == "models" else f"{kind}/{key}")
        auth = self._authorized(request)
        if auth is False and repo is not None and repo.bad_token_404:
            return web.json_response({"error": "Not Found"}, status=404)
        if auth is False and repo is not None and repo.bad_token_login:
            return web.Response(status=302, headers={"Location": "/login"})
        if auth is False:
            return web.json_response(
                {"error": "Invalid credentials in Authorization header"},
                status=401,
                headers={"X-Error-Message": "Invalid credentials in Authorization header"},
            )
        if repo is None or (repo.private and not auth):
            status = 404 if auth else 401
            return self._error(status, "RepoNotFound", "Repository not found")
        revision = unquote(request.match_info.get("rev", "main"))
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if files and repo.gated and not auth:
            return self._error(
                401, "GatedRepo", f"Access to model {repo.repo_id} is restricted.", commit
            )
        return repo, commit

    async def _info(self, request: web.Request) -> web.Response:
        found = self._find(request, files=False)
        if isinstance(found, web.Response):
            return found
        repo, commit = found
        blobs = request.query.get("blobs") in ("1", "true", "True")
        siblings = []
        for path, hub_file in sorted(repo.commits[commit].items()):
            sibling: dict[str, object] = {"rfilename": path}
            if blobs:
                sibling |= {"size": hub_file.content.size, "blobId": hub_file.oid}
                if hub_file.lfs:
                    sibling["lfs"] = {
                        "size": hub_file.content.size,
                        "sha256": hub_file.content.sha256,
                        "pointerSize": len(hub_file.pointer()),
                    }
            siblings.append(sibling)
        info = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "sha": commit,
            "private": repo.private,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if not repo.says_openness:
            del info["private"], info["gated"]
        return web.json_response(info)

    async def _tree(self, request: web.Request) -> web.Response:
        found = self._find(request, files=False)
        if isinstance(found, web.Response):
            return found
        repo, commit = found
        prefix = request.match_info.get("path", "").strip("/")
        recursive = request.query.get("recursive") in ("1", "true", "True")
        listed = (repo.repo_id, commit, prefix, recursive)
        if self._listed[0] != listed:  # paging through one tree: list it once, not per page
            entries = _tree_entries(repo.commits[commit], prefix, recursive)
            self._listed = (listed, [_with_xet(e) for e in entries] if repo.xet else entries)
        entries = self._listed[1]
        if prefix and not entries and prefix not in repo.commits[commit]:
            return self._error(404, "EntryNotFound", f"{prefix} does not exist", commit)
        cursor = int(request.query.get("cursor", "0"))
        page = entries[cursor : cursor + self.tree_page_size]
        headers = {}
        if cursor + self.tree_page_size < len(entries):
            query = dict(request.query) | {"cursor": str(cursor + self.tree_page_size)}
            next_url = request.url.with_query(query)
            headers["Link"] = f'<{next_url}>; rel="next"'
        if repo.next_link is not None and cursor == 0:
            headers["Link"] = f'<{repo.next_link}>; rel="next"'
        return web.Response(text=json.dumps(page), content_type="application/json", headers=headers)

    async def _paths_info(self, request: web.Request) -> web.Response:
        found = self._find(request, files=False)
        if isinstance(found, web.Response):
            return found
        repo, commit = found
        asked = (await request.post()).getall("paths", [])
        entries = {str(e["path"]): e for e in _tree_entries(repo.commits[commit], "", True)}
        return web.json_response([entries[str(p)] for p in asked if str(p) in entries])

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        found = self._find(request, files=True)
        if isinstance(found, web.Response):
            return found
        repo, commit = found
        path = unquote(request.match_info["path"])
        hub_file = repo.commits[commit].get(path)
        if hub_file is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist", commit)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{hub_file.oid}"'}
        if hub_file.lfs:
            sha = hub_file.content.sha256
            location = f"{self.cdn_url}/lfs/{sha}?repo={quote(repo.repo_id)}"
            if self.bridge is not None:
                location = self.bridge.signed_url(hub_file.content, path, repo.repo_id)
            headers |= {
                "Location": location,
                "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(hub_file.content.size),
            }
            return web.Response(status=302, headers=headers)
        return await send_content(request, hub_file.content, None, self.traffic, headers)

    async def _xet_token(self, request: web.Request) -> web.Response:
        found = self._find(request, files=True)
        if isinstance(found, web.Response):
            return found
        headers = {
            "X-Xet-Cas-Url": self.cas_url,
            "X-Xet-Access-Token": "xet-test-token",
            "X-Xet-Token-Expiration": "4102444800",
        }
        return web.json_response(
            {"casUrl": self.cas_url, "accessToken": "xet-test-token", "exp": 4102444800},
            headers=headers,
        )

    def _cas_app(self) -> web.Application:
        """A Xet CAS host that refuses everything and counts what reached it."""
        app = web.Application(middlewares=[self._count(self.cas_traffic)])
        app.router.add_route("*", "/{path:.*}", self._cas)
        return app

    async def _cas(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such xorb")

    # -- the content host ---------------------------------------------------------------

    def _cdn_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count(self.cdn_traffic)])
        app.router.add_get("/lfs/{sha}", self._lfs)
        return app

    async def _lfs(self, request: web.Request) -> web.StreamResponse:
        sha = request.match_info["sha"]
        content = self._by_sha.get(sha)
        if content is None:
            return web.Response(status=404, text="no such object")
        headers = {"ETag": f'"{sha}"', "Content-Type": "application/octet-stream"}
        return await send_content(request, content, self.faults.get(sha), self.cdn_traffic, headers)


def _with_xet(entry: dict[str, object]) -> dict[str, object]:
    """A tree entry as the Hub gives it for a file in Xet storage (LFS files here)."""
    lfs = entry.get("lfs")
    if not isinstance(lfs, dict):
        return entry
    return entry | {"xetHash": hashlib.sha256(f"xet:{lfs['oid']}".encode()).hexdigest()}


def _tree_entries(
    files: dict[str, HubFile], prefix: str, recursive: bool
) -> list[dict[str, object]]:
    """Tree listing as the Hub gives it: folders as entries, files with oid, size, lfs."""
    base = f"{prefix}/" if prefix else ""
    entries: dict[str, dict[str, object]] = {}
    for path, hub_file in sorted(files.items()):
        if not path.startswith(base):
            continue
        rest = path[len(base) :]
        parts = rest.split("/")
        for depth in range(1, len(parts)):
            folder = base + "/".join(parts[:depth])
            if recursive or depth == 1:
                entries.setdefault(
                    folder,
                    {
                        "type": "directory",
                        "oid": hashlib.sha1(folder.encode()).hexdigest(),
                        "size": 0,
                        "path": folder,
                    },
                )
            if not recursive:
                break
        if len(parts) > 1 and not recursive:
            continue
        entry: dict[str, object] = {
            "type": "file",
            "oid": hub_file.oid,
            "size": hub_file.content.size,
            "path": path,
        }
        if hub_file.lfs:
            entry["lfs"] = {
                "oid": hub_file.content.sha256,
                "size": hub_file.content.size,
                "pointerSize": len(hub_file.pointer()),
            }
        entries[path] = entry
    return sorted(entries.values(), key=lambda e: str(e["path"]))
