"""The market: its required list, and whether this node is ready to serve it."""

from __future__ import annotations

from aiohttp import web

from ..store import Store
from .context import context_of
from .models import Entry, Market, MarketItem, Readiness, Unready, respond

routes = web.RouteTableDef()


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when the store works and every required item is ready; 503 naming what is not."""
    context = context_of(request)
    problems: list[Unready] = []
    try:
        await context.store.usage()
    except Exception as exc:  # the store cannot answer: that is the whole point of asking
        problems.append(
            Unready(kind="store", name=str(context.store.settings.path), error=str(exc))
        )
    market = context.market
    if market.address is not None and market.state.fetched_at is None:
        problems.append(
            Unready(
                kind="market",
                name=market.address,
                state="pending",
                error=market.state.last_error or "the required list was not fetched yet",
            )
        )
    problems.extend(
        Unready(kind=i.kind, name=i.name, state=i.state, error=i.error) for i in market.missing()
    )
    if problems:
        return respond(Readiness(status="not ready", missing=problems), status=503)
    return respond(Readiness(status="ready"))


@routes.get("/v1/market")
async def market(request: web.Request) -> web.Response:
    """The required list, each item with its entry's size, progress and pin when it has one."""
    context = context_of(request)
    sync, store = context.market, context.store
    items = [MarketItem.of(item, await _entry(store, item.entry_id)) for item in sync.state.items]
    return respond(Market.of(sync, items))


async def _entry(store: Store, entry_id: str | None) -> Entry | None:
    """An item's entry, unless it has none or the store cannot show it (gone meanwhile)."""
    if not entry_id:
        return None
    try:
        return Entry.of(store, await store.get(entry_id))
    except Exception:
        return None
