"""`GET /v1/market`: the market's required list, and how far each item got on this node."""

from __future__ import annotations

from ...market import Item
from ...market import Market as MarketSync
from ...util.wire import Instant, Omitted, body
from .entries import Entry, Progress


@body
class MarketItem:
    """A required image or resource (`kind`), its state (`pending`, `downloading`, `ready`,
    `failed`) and, once it has an entry, that entry's size, progress and pin."""

    kind: str
    name: str
    state: str
    error: str | None
    entry_id: str | None
    size_bytes: Omitted[int] = None
    progress: Omitted[Progress] = None
    pinned: Omitted[bool] = None

    @classmethod
    def of(cls, item: Item, entry: Entry | None) -> MarketItem:
        return cls(
            kind=item.kind,
            name=item.name,
            state=item.state,
            error=item.error,
            entry_id=item.entry_id,
            size_bytes=entry.size_bytes if entry else None,
            progress=entry.progress if entry else None,
            pinned=entry.pinned if entry else None,
        )


@body
class Market:
    """The market this node serves (none: `address` is null and the list empty), when its
    list was last fetched, and every required item."""

    address: str | None
    url: str | None
    ready: bool
    last_fetch_at: Instant
    last_attempt_at: Instant
    last_error: str | None
    items: list[MarketItem]

    @classmethod
    def of(cls, market: MarketSync, items: list[MarketItem]) -> Market:
        state = market.state
        return cls(
            address=market.address,
            url=market.url,
            ready=market.ready(),
            last_fetch_at=state.fetched_at,
            last_attempt_at=state.attempted_at,
            last_error=state.last_error,
            items=items,
        )
