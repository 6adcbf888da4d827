"""The market: its required list, and whether this node is ready to serve it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..market import Market
from ..store import Store
from .context import context_of
from .shapes import entry_json, timestamp

routes = web.RouteTableDef()


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when the store works and every required item is ready; 503 naming what is not."""
    context = context_of(request)
    problems: list[dict[str, Any]] = []
    try:
        await context.store.usage()
    except Exception as exc:  # the store cannot answer: that is the whole point of asking
        problems.append(
            {"kind": "store", "name": str(context.settings.store.path), "error": str(exc)}
        )
    market = context.market
    if market.address is not None and market.state.fetched_at is None:
        problems.append(
            {
                "kind": "market",
                "name": market.address,
                "state": "pending",
                "error": market.state.last_error or "the required list was not fetched yet",
            }
        )
    problems.extend(market.missing())
    if problems:
        return web.json_response({"status": "not ready", "missing": problems}, status=503)
    return web.json_response({"status": "ready"})


@routes.get("/v1/market")
async def market(request: web.Request) -> web.Response:
    context = context_of(request)
    return web.json_response(await market_json(context.market, context.store))


async def market_json(market: Market, store: Store) -> dict[str, Any]:
    items = []
    for item in market.state.items:
        body: dict[str, Any] = {
            "kind": item.kind,
            "name": item.name,
            "state": item.state,
            "error": item.error,
            "entry_id": item.entry_id,
        }
        if item.entry_id:
            try:
                entry = entry_json(store, await store.get(item.entry_id))
            except Exception:
                entry = None
            if entry:
                body |= {
                    "size_bytes": entry["size_bytes"],
                    "progress": entry["progress"],
                    "pinned": entry["pinned"],
                }
        items.append(body)
    state = market.state
    return {
        "address": market.address,
        "url": market.url,
        "ready": market.ready(),
        "last_fetch_at": timestamp(state.fetched_at),
        "last_attempt_at": timestamp(state.attempted_at),
        "last_error": state.last_error,
        "items": items,
    }
