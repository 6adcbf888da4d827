"""Liveness and the daemon's status: what an operator or a probe asks first."""

from __future__ import annotations

from aiohttp import web

from .. import __version__
from .context import ApiContext, context_of
from .models import (
    DockerStatus,
    FenceStatus,
    Health,
    HubListenerStatus,
    MarketSummary,
    NodeSocketStatus,
    PeriodicTask,
    RegistryStatus,
    SiteStatus,
    Status,
    StoreStatus,
    TransferStatus,
    respond,
)

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves; no dependency is consulted (that is /readyz)."""
    return respond(Health(status="ok"))


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    context = context_of(request)
    docker = await context.engine.status()
    site = context.cache.site
    body = Status(
        version=__version__,
        uptime_seconds=round(context.clock.monotonic() - context.started, 1),
        store=StoreStatus.of(context.store.settings, context.store, await context.store.usage()),
        docker=DockerStatus.of(docker),
        fence=await _fence(context),
        hub_listener=await _hub_listener(context, docker.reachable),
        transfers=TransferStatus(in_flight=context.store.transfers_in_flight()),
        market=MarketSummary.of(context.market),
        scheduler={
            name: PeriodicTask.of(health) for name, health in context.scheduler.health.items()
        },
        site=SiteStatus.of(
            await site.report() if site is not None else None, context.cache.transfer_stats()
        ),
        registry=RegistryStatus.of(context.registry, context.registry_pulls),
        node=NodeSocketStatus.of(context.node),
    )
    return respond(body)


async def _fence(context: ApiContext) -> FenceStatus | None:
    if context.fence is None:
        return None
    allow = [str(net) for net in context.fence.plan.allow]
    return FenceStatus.of(await context.fence.status(), allow)


async def _hub_listener(context: ApiContext, engine_reachable: bool) -> HubListenerStatus:
    """Where job containers reach the Hub endpoint. With the engine there, the listener is
    bound now if it was not (at most every 30 s after a failure): the answer is today's, not
    the one from start-up."""
    listener = context.listener
    if listener is None:
        return HubListenerStatus.of(None)
    if engine_reachable:
        await listener.endpoint()
    return HubListenerStatus.of(listener.report)
