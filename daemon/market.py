"""A market's required images and resources: fetched at start-up, kept pinned, refreshed.

"Nodes will have certain Docker images and inference models available as a prerequisite to
enter their markets" (the seed). With `market.address` set, the required list is fetched from
`market.required_resources_url` at start-up and every `market.refresh_interval`; every item
is pulled or fetched through the same paths as jobs (a few at a time) and pinned with owner
`market`, so no ttl and no space pressure evicts it. An item dropped from the list is
unpinned, and then ages out by the ordinary rules.

The market API being down changes nothing: the last list (kept in `market.json` beside the
store's index) stays in force, pins stay, and the fetch is retried with backoff. A malformed
answer is an error that changes nothing either. Start-up never waits for any of this: the API
serves at once, and `/readyz` says 503, naming what is missing, until every item is ready.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from .cache import Cache
from .engine.images import Credentials, Images
from .errors import InvalidInput, NosanaCacheError, UpstreamTooLarge
from .logs import get_logger
from .resources import describe, field_errors, parse_resource
from .scheduler import Scheduler
from .settings import MarketSettings
from .sources import Resource
from .sources.identity import canonical
from .sources.transfer import Transfer
from .store import Store
from .util.clock import Clock, SystemClock
from .util.limits import MARKET_BYTES, MARKET_ITEMS
from .util.retry import RetryPolicy

log = get_logger(__name__)

PIN_OWNER = "market"
RETRY = RetryPolicy(first_delay=1.25, max_delay=150.0)
"""Pauses before fetching a list that failed again (never longer than refresh_interval)."""
AT_ONCE = 4


class _ImageItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    server: str | None = None
    username: str | None = None
    password: str | None = None


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    required_images: list[str | _ImageItem] = []
    required_remote_resources: list[dict[str, Any]] = []


_ANSWER = TypeAdapter(_Answer)


@dataclass
class Item:
    """One required image or resource, and how far it got."""

    kind: str  # "image" or "resource"
    name: str
    resource: Resource | None = None
    credentials: Credentials | None = None
    state: str = "pending"
    entry_id: str | None = None
    error: str | None = None

    def key(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass
class MarketState:
    fetched_at: float | None = None
    attempted_at: float | None = None
    last_error: str | None = None
    items: list[Item] = field(default_factory=list)


def parse_required(body: bytes) -> list[Item]:
    """Both shapes NOSANA.md describes; any problem is an `InvalidInput` naming its place."""
    try:
        answer = _ANSWER.validate_json(body)
    except ValidationError as exc:
        try:
            document = json.loads(body)
        except ValueError:
            document = None  # not JSON at all: the one error has no place
        errors = field_errors(exc, "", document)
        raise InvalidInput(f"malformed required list: {describe(errors[0])}", errors) from None
    count = len(answer.required_images) + len(answer.required_remote_resources)
    too_many = MARKET_ITEMS.over(count, "the required list")
    if too_many:  # before anything is pulled or pinned
        raise UpstreamTooLarge(too_many)
    items = []
    for image in answer.required_images:
        if isinstance(image, str):
            items.append(Item("image", image))
        else:
            creds = None
            if image.username or image.password:
                creds = Credentials(image.username, image.password, image.server)
            items.append(Item("image", image.name, credentials=creds))
    for index, raw in enumerate(answer.required_remote_resources):
        data = dict(raw)
        if data.get("type") == "HF" and "url" in data and "repo" not in data:
            data["repo"] = data.pop("url")  # the newer shape names the repo `url`
        resource = parse_resource(data, where=f"required_remote_resources[{index}]")
        items.append(Item("resource", _describe(resource), resource=resource))
    return items


def _describe(resource: Resource) -> str:
    return canonical(resource.model_dump(mode="json", exclude={"target"}, exclude_none=True))


class Market:
    def __init__(
        self,
        settings: MarketSettings,
        store: Store,
        cache: Cache,
        images: Images,
        transfer: Transfer,
        scheduler: Scheduler,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.settings = settings
        self.store = store
        self.cache = cache
        self.images = images
        self.transfer = transfer
        self.scheduler = scheduler
        self.state = MarketState()
        self._saved = store.settings.path / "market.json"
        self._failures = 0
        self._sync_lock = asyncio.Lock()

    @property
    def address(self) -> str | None:
        return self.settings.address

    @property
    def url(self) -> str | None:
        if self.address is None:
            return None
        return self.settings.required_resources_url.format(market=self.address)

    def start(self) -> None:
        """Use the list a previous run kept, and schedule fetching the current one."""
        if self.address is None:
            return
        saved = _load(self._saved, self.address)
        if saved is not None:
            try:
                self.state.items = parse_required(saved["body"].encode())
                self.state.fetched_at = saved["fetched_at"]
            except InvalidInput:
                log.warning("market.saved_list_unreadable", path=str(self._saved))
        self.scheduler.every(
            self.settings.refresh_interval, "market-refresh", self.refresh, first_in=0
        )

    async def refresh(self) -> None:
        """Fetch the list; on success make the store match it. A failure keeps everything."""
        assert self.url is not None
        self.state.attempted_at = self.clock.now()
        try:
            response = await self.transfer.get(
                self.url, name=f"market {self.address}", trusted=True, limit=MARKET_BYTES
            )
            items = parse_required(response.body)
        except NosanaCacheError as exc:
            self._failures += 1
            self.state.last_error = exc.message
            retry = min(self.settings.refresh_interval, RETRY.delay(self._failures))
            log.warning("market.fetch_failed", error=exc.message, retry_in=round(retry, 1))
            self.scheduler.once(retry, "market-retry", self.refresh)
            if self.state.items:
                await self._sync(self.state.items)  # the kept list still applies
            return
        self._failures = 0
        self.state.last_error = None
        self.state.fetched_at = self.clock.now()
        _save(self._saved, self.address or "", response.body, self.state.fetched_at)
        previous = {item.key(): item for item in self.state.items}
        self.state.items = [previous.get(item.key(), item) for item in items]
        log.info(
            "market.list_fetched",
            images=sum(i.kind == "image" for i in items),
            resources=sum(i.kind == "resource" for i in items),
        )
        await self._sync(self.state.items)

    async def _sync(self, items: list[Item]) -> None:
        """Every item fetched and pinned; pins of entries no longer on the list released."""
        async with self._sync_lock:
            slots = asyncio.Semaphore(AT_ONCE)

            async def ensure(item: Item) -> None:
                async with slots:
                    await self._ensure(item)

            await asyncio.gather(*(ensure(item) for item in items))
            wanted = {item.entry_id for item in items if item.entry_id}
            for entry_id in await self.store.pinned_by(PIN_OWNER):
                if entry_id not in wanted:
                    await self.store.unpin(entry_id, PIN_OWNER)
                    log.info("market.unpinned", entry_id=entry_id)

    async def _ensure(self, item: Item) -> None:
        if item.state == "ready" and item.entry_id is not None:
            try:
                entry = await self.store.get(item.entry_id)
                if entry.state == "ready" and PIN_OWNER in entry.pinned_by:
                    return
            except NosanaCacheError:
                pass
        item.state, item.error = "downloading", None
        try:
            if item.kind == "image":
                lease = await self.images.acquire(
                    item.name, item.credentials, holder=PIN_OWNER, trusted=True
                )
                await self.store.pin(lease.entry.id, PIN_OWNER)
                await self.store.release(lease)
                item.entry_id = lease.entry.id
            else:
                assert item.resource is not None
                pending = await self.cache.ensure(item.resource)
                item.entry_id = pending.id
                entry = await self.cache.wait_ready(item.resource)
                await self.store.pin(entry.id, PIN_OWNER)
                item.entry_id = entry.id
            item.state = "ready"
        except NosanaCacheError as exc:
            item.state, item.error = "failed", exc.message
            log.warning("market.item_failed", item=item.name, error=exc.message)

    def missing(self) -> list[Item]:
        """Items not ready yet, for /readyz."""
        return [i for i in self.state.items if i.state != "ready"]

    def ready(self) -> bool:
        if self.address is None:
            return True
        if self.state.fetched_at is None:
            return False  # never had a list: cannot say what is required
        return not self.missing()


class _Saved(TypedDict):
    """The list a run fetched last, as `_save` keeps it: the market's answer as it came."""

    address: str
    fetched_at: float
    body: str


def _load(path: Path, address: str) -> _Saved | None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("address") != address:
        return None
    body, fetched_at = saved.get("body"), saved.get("fetched_at")
    if not isinstance(body, str) or not isinstance(fetched_at, int | float):
        return None  # not what `_save` writes: the list is fetched again
    return _Saved(address=address, fetched_at=float(fetched_at), body=body)


def _save(path: Path, address: str, body: bytes, fetched_at: float) -> None:
    """Atomically: a crash mid-write must not lose the list the node relies on."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps({"address": address, "fetched_at": fetched_at, "body": body.decode()})
    )
    tmp.replace(path)
