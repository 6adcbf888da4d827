"""The Hub's download protocol, as routes of an app mounted at `/hf`.

    GET      /api/{models|datasets}/{repo}[/revision/{rev}]   repo info (`?blobs=true`)
    GET      /api/{models|datasets}/{repo}/tree/{rev}[/{path}]   tree (`?recursive=true`, paged)
    POST     /api/{models|datasets}/{repo}/paths-info/{rev}   entries of given paths
    HEAD|GET /[datasets/]{repo}/resolve/{rev}/{path}          a file's metadata and bytes
    GET      /api/{models|datasets}/{org}/{name}/refs          branches (llama.cpp's -hf)
    GET      /v2/{org}/{name}/manifests/{tag}                  the GGUF file a tag names
    GET      /api/{models|datasets}/{repo}/xet-read-token/{rev}   refused: no Xet here

These are what huggingface_hub (2.x and 0.x), transformers, vLLM, TGI and llama.cpp ask a Hub
for when they download (`HF_ENDPOINT`, llama.cpp's `MODEL_ENDPOINT`). Handlers stay thin: they
read the request, ask the mirror, and answer in the Hub's shapes; every error leaves as the
Hub's (problems.py). A request's own `Authorization` is the token used upstream for it.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidInput
from ..logs import get_logger
from ..sources.hub_listing import RepoRef, RepoType
from ..store import validate_relative_path
from ..util.wire import respond
from .answers import GgufFile, GgufManifest, RepoInfo, RepoRefs, TreeEntries
from .gguf import LATEST, choose
from .inputs import asked_paths, revision_of
from .mirror import HubMirror
from .problems import XET_REFUSED, XET_STATUS, EntryNotFound, hub_error, hub_errors
from .serving import file_headers, head, send, wanted
from .tree import page, paths_info, under

log = get_logger(__name__)

PREFIX = "/hf"
MIRROR = web.AppKey("mirror", HubMirror)
_REPO = r"{repo:[A-Za-z0-9][\w.-]*(?:/[A-Za-z0-9][\w.-]*)?}"
_API = r"/api/{kind:models|datasets}/" + _REPO
_TWO = r"{repo:[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*}"
"""A repo id of two segments: llama.cpp's, and what keeps `/refs` from reading as a repo."""
_TRUE = ("1", "true", "True")


def hub_app(mirror: HubMirror) -> web.Application:
    """The `/hf` app: mount it with `add_subapp(PREFIX, ...)` (one app per parent)."""
    app = web.Application(middlewares=[hub_errors])
    app[MIRROR] = mirror
    router = app.router
    router.add_get("/api/{kind:models|datasets}/" + _TWO + "/refs", refs, allow_head=False)
    router.add_get(_API + "/xet-read-token/{rev}", xet_token, allow_head=False)
    router.add_get("/v2/" + _TWO + "/manifests/{tag}", gguf_manifest, allow_head=False)
    router.add_get("/v2/" + _TWO + "/manifests/", gguf_manifest, allow_head=False)
    router.add_get(_API, repo_info, allow_head=False)
    router.add_get(_API + "/revision/{rev}", repo_info, allow_head=False)
    router.add_get(_API + "/tree/{rev}", tree, allow_head=False)
    router.add_get(_API + "/tree/{rev}/{path:.+}", tree, allow_head=False)
    router.add_post(_API + "/paths-info/{rev}", paths)
    router.add_get("/datasets/" + _REPO + "/resolve/{rev}/{path:.+}", resolve_dataset)
    router.add_get("/" + _REPO + "/resolve/{rev}/{path:.+}", resolve_model)
    return app


def _repo(request: web.Request, kind: RepoType | None = None) -> RepoRef:
    if kind is None:
        kind = "model" if request.match_info["kind"] == "models" else "dataset"
    repo = request.match_info["repo"]
    if ".." in repo or "--" in repo or repo.endswith((".git", ".")):
        raise InvalidInput(f"{repo!r} is not a repo id")
    return RepoRef(kind, repo)


def _revision(request: web.Request) -> str:
    return revision_of(request)


def _path(text: str) -> str:
    try:
        return validate_relative_path(text)
    except Exception as exc:
        raise InvalidInput(f"{text!r} is not a file path in a repo") from exc


def _auth(request: web.Request) -> str | None:
    return request.headers.get("Authorization") or None


async def repo_info(request: web.Request) -> web.Response:
    repo, revision = _repo(request), _revision(request)
    listing = await request.app[MIRROR].listing(repo, revision, _auth(request))
    blobs = request.query.get("blobs") in _TRUE
    return respond(RepoInfo.of(listing, blobs=blobs))


async def tree(request: web.Request) -> web.Response:
    repo, revision = _repo(request), _revision(request)
    folder = request.match_info.get("path", "").strip("/")
    if folder:
        folder = _path(folder)
    listing = await request.app[MIRROR].listing(repo, revision, _auth(request))
    entries = under(listing, folder, recursive=request.query.get("recursive") in _TRUE)
    if entries is None:
        raise EntryNotFound(f"{repo}: no folder {folder} at {listing.commit}", listing.commit)
    chosen, following = page(entries, request.query.get("cursor"))
    headers = {}
    if following is not None:
        link = request.url.update_query(cursor=str(following))
        headers["Link"] = f'<{link}>; rel="next"'
    return respond(TreeEntries(chosen), headers=headers)


async def paths(request: web.Request) -> web.Response:
    repo, revision = _repo(request), _revision(request)
    asked = await asked_paths(request)
    listing = await request.app[MIRROR].listing(repo, revision, _auth(request))
    return respond(TreeEntries(paths_info(listing, asked)))


async def resolve_model(request: web.Request) -> web.StreamResponse:
    return await _resolve(request, _repo(request, "model"))


async def resolve_dataset(request: web.Request) -> web.StreamResponse:
    return await _resolve(request, _repo(request, "dataset"))


async def _resolve(request: web.Request, repo: RepoRef) -> web.StreamResponse:
    mirror, auth = request.app[MIRROR], _auth(request)
    path = _path(request.match_info["path"])
    listing, entry = await mirror.file(repo, _revision(request), path, auth)
    if request.method == "HEAD":
        return await head(request, listing, entry)
    span = wanted(request, listing, entry)
    if isinstance(span, web.Response):
        return span
    stream = await mirror.open(listing, entry, auth)
    try:
        return await send(request, stream, file_headers(listing, entry), span)
    finally:
        await stream.close()


async def refs(request: web.Request) -> web.Response:
    """The repo's branches as llama.cpp reads them (the `main` branch's commit), from the
    listing of `main`: the store's while it is fresh, else upstream's (once per ttl)."""
    repo = _repo(request)
    listing = await request.app[MIRROR].listing(repo, "main", _auth(request))
    return respond(RepoRefs.of(listing, "main"))


async def gguf_manifest(request: web.Request) -> web.Response:
    """The GGUF file (and vision projector) a quantization tag names, from the listing of
    `main`, as the Hub's manifest for older llama.cpp's `-hf` (gguf.py)."""
    repo = _repo(request, "model")
    tag = request.match_info.get("tag") or LATEST
    listing = await request.app[MIRROR].listing(repo, "main", _auth(request))
    try:
        model, projector = choose(listing.files, tag)
    except LookupError as exc:
        raise InvalidInput(f"{repo}: {exc}") from None
    return respond(
        GgufManifest(
            ggufFile=GgufFile.of(model), mmprojFile=GgufFile.of(projector) if projector else None
        )
    )


async def xet_token(request: web.Request) -> web.Response:
    """Refused with the reason (problems.XET_REFUSED): the cache serves no Xet storage."""
    log.info(
        "hub.xet_refused",
        repo=request.match_info["repo"],
        user_agent=request.headers.get("User-Agent"),
    )
    return hub_error(XET_STATUS, XET_REFUSED, "XetNotServed")
