"""Cache entries: list, show, delete; and the store's maintenance (gc, verify)."""

from __future__ import annotations

from aiohttp import web

from ..errors import Conflict, InvalidInput
from ..resources import parse_resource
from .context import context_of
from .models import (
    Entry,
    EntryList,
    SiteSweepReport,
    SweepReport,
    VerifyReport,
    entry_files,
    respond,
)
from .shapes import flag, read_json

routes = web.RouteTableDef()


@routes.post("/v1/resources")
async def pull_resource(request: web.Request) -> web.Response:
    """Start (or join) a resource's download; `?wait=true` answers when it is ready."""
    context = context_of(request)
    resource = parse_resource(await read_json(request))
    if flag(request, "wait"):
        entry = await context.cache.wait_ready(resource)
        return respond(Entry.of(context.store, entry), status=200)
    entry = await context.cache.ensure(resource)
    status = 200 if entry.state == "ready" else 202
    return respond(Entry.of(context.store, entry), status=status)


_STATES = {"pending", "downloading", "ready", "failed"}


@routes.get("/v1/resources")
async def list_resources(request: web.Request) -> web.Response:
    store = context_of(request).store
    states = [s for value in request.query.getall("state", []) for s in value.split(",") if s]
    unknown = set(states) - _STATES
    if unknown:
        raise InvalidInput(f"unknown state {sorted(unknown)[0]!r}; one of {sorted(_STATES)}")
    entries = await store.entries(states)
    return respond(EntryList(resources=[Entry.of(store, e) for e in entries]))


@routes.get("/v1/resources/{id}")
async def show_resource(request: web.Request) -> web.Response:
    store = context_of(request).store
    entry = await store.get(request.match_info["id"])
    files = await entry_files(store, entry.id) if flag(request, "files") else None
    return respond(Entry.of(store, entry, files))


@routes.delete("/v1/resources/{id}")
async def delete_resource(request: web.Request) -> web.Response:
    await context_of(request).store.delete(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/v1/gc")
async def gc(request: web.Request) -> web.Response:
    """Sweep now: expired, unheld entries go, then unreferenced blobs."""
    return respond(SweepReport.of(await context_of(request).store.sweep()))


@routes.post("/v1/verify")
async def verify(request: web.Request) -> web.Response:
    """Re-hash every blob; corrupt ones are deleted and their entries fetched again later."""
    return respond(VerifyReport.of(await context_of(request).store.verify()))


@routes.post("/v1/site/gc")
async def site_gc(request: web.Request) -> web.Response:
    """Sweep the site store (`nosana-cache gc --site`), for buckets without lifecycle rules."""
    site = context_of(request).cache.site
    if site is None:
        raise Conflict("site.store is not set: this daemon has no site store to sweep")
    return respond(SiteSweepReport.of(await site.sweep()))
