"""`GET /metrics`: Prometheus text, gathered fresh at every scrape."""

from __future__ import annotations

from collections import Counter

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ..metrics import Snapshot
from .context import ApiContext, context_of

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    context = context_of(request)
    context.metrics.snapshot = await gather(context)
    return web.Response(
        body=context.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def gather(context: ApiContext) -> Snapshot:
    store = context.store
    snapshot = Snapshot()
    for total in await store.totals():
        snapshot.entries[(total.type, total.state)] = total.entries
        snapshot.entry_bytes[(total.type, total.state)] = total.bytes
    usage = await store.usage()
    snapshot.blob_bytes, snapshot.blobs, room = usage.bytes_used, usage.blobs, usage.room
    snapshot.fs_free = room.fs_free
    snapshot.max_size = room.max_size
    snapshot.min_free = room.min_free
    snapshot.jobs = await context.runner.records.counts()
    snapshot.market_configured = context.market.address is not None
    snapshot.market_items = len(context.market.state.items)
    snapshot.market_missing = 0 if context.market.ready() else max(1, len(context.market.missing()))
    stats = store.stats
    snapshot.hits = Counter(stats.hits)
    snapshot.misses = Counter(stats.misses)
    snapshot.bytes_fetched = Counter(stats.bytes_fetched)
    snapshot.evictions = Counter(stats.evictions)
    snapshot.fetch_failures = Counter(stats.failures)
    transfers = context.cache.transfer_stats()
    snapshot.bytes_received = transfers.bytes_received
    snapshot.transfers_active = transfers.active
    snapshot.fetches_in_flight = store.transfers_in_flight()
    if context.registry is not None:
        snapshot.registry_configured = True
        snapshot.registry_up = context.registry.address is not None
        snapshot.registry_address = context.registry.address or str(context.registry.listener)
    if context.registry_pulls is not None:
        snapshot.registry_bytes = Counter(context.registry_pulls.totals)
    if context.fence is not None:
        snapshot.fenced = (await context.fence.status()).state == "fenced"
    site = context.cache.site
    if site is not None:
        report = await site.report()
        counters = report.counters
        snapshot.site_configured, snapshot.site_up = True, bool(report.up)
        snapshot.site_bytes_read = counters.bytes_from_site
        snapshot.site_bytes_uploaded = counters.bytes_uploaded
        snapshot.site_blobs_uploaded = counters.blobs_uploaded
        snapshot.site_manifests_uploaded = counters.manifests_uploaded
        snapshot.site_lookups = Counter(hit=counters.manifest_hits, miss=counters.manifest_misses)
        snapshot.site_fallbacks = counters.fallbacks
        snapshot.site_damaged = counters.damaged
        snapshot.site_herd_waits = counters.herd_waits
        snapshot.site_uploads_pending = report.uploads_pending
    return snapshot
