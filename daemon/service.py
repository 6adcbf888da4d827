"""The composition root: builds every component from `Settings`, in order, and tears down.

Start-up order: store (with crash recovery) → sources (HTTP sessions) → the site store, when
`site.store` is set (its uploads left owing resume) → cache → Docker engine (absent is fine) →
the registry endpoint on `registry.listen` → images (pulled through it) → the fence around job
containers (checked, installed where this process may) → the Hub endpoint and its containers'
listener (bound once the engine says where) → the engine socket for Nosana's node
(`node.socket`; its file removed again first at shutdown) → job records → runner (re-attaching
jobs the last run left) → downloads the last run left unfinished → market (its kept list; the
fetch is scheduled) → scheduler (store sweep, job expiry, market refresh) → API listeners.
Shutdown runs the same stack backwards: the API stops accepting first, then in-flight work is
finished or cut (jobs' containers keep running), then the store closes. Signal handlers only
set the stop event (uvicorn, kopf do the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping

from .api.app import build_app, build_container_app
from .api.context import ApiContext
from .api.server import serve
from .cache import Cache
from .engine.client import Engine
from .engine.images import Images
from .engine.networks import Networks
from .fence import Fence
from .fence.fence import RECHECK as FENCE_RECHECK
from .hub import ContainerListener, HubMirror
from .jobs.records import JobRecords
from .jobs.runner import Runner, owner_of
from .logs import get_logger
from .market import Market
from .metrics import Metrics
from .node import NodeEngineSocket
from .registry import Pulls, Refusals, RegistryListener, RegistryMirror, registry_app
from .scheduler import Scheduler
from .settings import Settings
from .site import Site
from .sources import Sources
from .store import Store
from .store.maintenance import CHECKPOINT_EVERY
from .util.aiotasks import TaskSet
from .util.clock import Clock, SystemClock
from .util.limits import raise_open_files_limit
from .util.memory import keep_memory_flat
from .util.notify import Notifier

log = get_logger(__name__)

SHUTDOWN_TIMEOUT = 15.0
"""Upper bound on a graceful stop; systemd's TimeoutStopSec is set above it."""


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.environ = environ if environ is not None else {}
        self.listener: ContainerListener | None = None

    async def run(
        self, stop: asyncio.Event, on_ready: Callable[[list[str]], None] | None = None
    ) -> None:
        """Serve until `stop` is set; then shut down in reverse order within a bounded time."""
        stack = contextlib.AsyncExitStack()
        try:
            context = await self.build(stack)
            background = TaskSet("service")
            stack.push_async_callback(background.close)
            app = build_app(context)
            bound = await stack.enter_async_context(serve(app, self.settings.api.listen))
            background.spawn(_report_engine(context.engine, self.listener), "docker-probe")
            notifier = Notifier(self.environ)
            notifier.send("READY=1", f"STATUS=serving on {', '.join(bound)}")
            background.spawn(notifier.watchdog(), "systemd-watchdog")
            stack.callback(notifier.send, "STOPPING=1")
            log.info("daemon.ready", addresses=bound, store=str(self.settings.store.path))
            if on_ready is not None:
                on_ready(bound)
            await stop.wait()
            log.info("daemon.stopping")
        finally:
            try:
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await stack.aclose()
            except TimeoutError:
                log.error("daemon.shutdown_timeout", seconds=SHUTDOWN_TIMEOUT)
        log.info("daemon.stopped")

    async def build(self, stack: contextlib.AsyncExitStack) -> ApiContext:
        """Every component, in start-up order; the stack closes them in reverse."""
        settings = self.settings
        store, sources, site, cache = await self._fetching(stack)
        engine = Engine(settings.docker, self.clock)
        stack.push_async_callback(engine.close)
        refusals = Refusals()
        registry, pulls = await self._registry(stack, store, sources, site, refusals)
        images = self._images(engine, store, registry, refusals)
        fence = Fence(settings.docker, settings.huggingface, settings.store.path, self.clock)
        await fence.settle()  # before any job container starts, re-attached ones included
        hub = self._hub(stack, store, sources, engine, site)
        node = await self._node(stack, cache, registry, refusals)
        records = JobRecords(settings.store.path, self.clock)
        await records.open()
        stack.push_async_callback(records.close)
        metrics = Metrics()
        runner = self._runner(records, cache, images, engine, metrics, fence)
        stack.push_async_callback(runner.close)
        jobs = await runner.recover(store.release_holders)
        downloads = cache.resume_unfinished(await store.unfinished())
        if jobs or downloads:
            log.info("daemon.resuming", jobs=jobs, downloads=downloads)
        scheduler = _housekeeping(settings, store, records, runner, fence, self.clock)
        market = Market(
            settings.market, store, cache, images, sources.transfer, scheduler, self.clock
        )
        market.start()
        scheduler.start()
        stack.push_async_callback(scheduler.stop)
        return ApiContext(
            api=settings.api,
            engine=engine,
            store=store,
            cache=cache,
            runner=runner,
            market=market,
            scheduler=scheduler,
            metrics=metrics,
            hub=hub,
            listener=self.listener,
            fence=fence,
            registry=registry,
            node=node,
            registry_pulls=pulls,
            clock=self.clock,
        )

    async def _fetching(
        self, stack: contextlib.AsyncExitStack
    ) -> tuple[Store, Sources, Site | None, Cache]:
        """The store, the sources, the site store behind them (if any) and the cache over all."""
        settings = self.settings
        store = await stack.enter_async_context(Store.open(settings.store, clock=self.clock))
        sources = Sources(settings, clock=self.clock)
        await sources.start()
        stack.push_async_callback(sources.close)
        site = None
        if settings.site.store is not None:
            opened = Site.open(settings.site, settings.download, store, sources, self.clock)
            site = await stack.enter_async_context(opened)
        # Fetches still running at shutdown are cut first (each recorded pending, resumed at
        # the next start) while the site store and the sources they read from are still open.
        stack.push_async_callback(store.fetcher.close)
        cache = Cache(store, sources, site)
        stack.push_async_callback(cache.close)
        return store, sources, site, cache

    def _images(
        self, engine: Engine, store: Store, registry: RegistryListener | None, refusals: Refusals
    ) -> Images:
        """Images pulled through the registry endpoint while it listens (pull_routes.py)."""
        settings = self.settings
        return Images(
            engine,
            store,
            settings.docker,
            clock=self.clock,
            allow_private=settings.security.allow_private_urls,
            mirror_private=settings.site.share_private,
            endpoint=lambda: registry.address if registry is not None else None,
            explain=refusals.last,
        )

    def _runner(
        self,
        records: JobRecords,
        cache: Cache,
        images: Images,
        engine: Engine,
        metrics: Metrics,
        fence: Fence,
    ) -> Runner:
        """The job runner; its containers get the Hub listener's address once it is bound."""
        hub = self.listener.endpoint if self.listener else None
        settings = self.settings
        return Runner(
            settings.jobs,
            settings.docker.gpu,
            owner_of(settings.store.path),
            records,
            cache,
            images,
            engine,
            metrics,
            hub,
            self.clock,
            fence,
        )

    def _hub(
        self,
        stack: contextlib.AsyncExitStack,
        store: Store,
        sources: Sources,
        engine: Engine,
        site: Site | None,
    ) -> HubMirror | None:
        """The Hub endpoint and the containers' listener for it (`huggingface.mirror`)."""
        if not self.settings.huggingface.mirror:
            return None
        hub = HubMirror(self.settings.huggingface, store, sources.hub, self.clock, site)
        app = build_container_app(hub, self.clock)
        networks = Networks(
            engine, owner_of(self.settings.store.path)
        )  # the shared one, if need be
        self.listener = ContainerListener(
            self.settings.huggingface, engine, networks, app, self.clock
        )
        stack.push_async_callback(self.listener.close)
        return hub

    async def _node(
        self,
        stack: contextlib.AsyncExitStack,
        cache: Cache,
        registry: RegistryListener | None,
        refusals: Refusals,
    ) -> NodeEngineSocket | None:
        """The engine socket the node is given (`node.socket`), in front of `node.engine`;
        its image pulls go through the registry endpoint as the daemon's own do."""
        if not self.settings.node.socket:
            return None
        hub = self.listener.endpoint if self.listener is not None else None
        node = NodeEngineSocket(
            self.settings.node,
            self.settings.docker,
            cache,
            hub,
            allow_private=self.settings.security.allow_private_urls,
            mirror_private=self.settings.site.share_private,
            endpoint=lambda: registry.address if registry is not None else None,
            explain=refusals.last,
            clock=self.clock,
        )
        await node.start()
        stack.push_async_callback(node.close)
        return node

    async def _registry(
        self,
        stack: contextlib.AsyncExitStack,
        store: Store,
        sources: Sources,
        site: Site | None,
        refusals: Refusals,
    ) -> tuple[RegistryListener | None, Pulls | None]:
        """The registry endpoint on its own listener (`registry.mirror`, `registry.listen`),
        with the site store in front of upstream, and its recent pulls."""
        settings = self.settings.registry
        if not settings.mirror:
            return None, None
        mirror = RegistryMirror(store, sources.registry, site, self.clock)
        stack.push_async_callback(mirror.close)
        listener = RegistryListener(registry_app(mirror, refusals), settings.listen)
        stack.push_async_callback(listener.close)
        await listener.start()
        mirror.resume_unfinished(await store.unfinished())
        return listener, mirror.pulls


def _housekeeping(
    settings: Settings,
    store: Store,
    records: JobRecords,
    runner: Runner,
    fence: Fence,
    clock: Clock,
) -> Scheduler:
    """The periodic work: sweeps, checkpoints, job records' expiry, orphan containers, and
    the fence put back if a firewall reload flushed it."""
    scheduler = Scheduler(clock)
    scheduler.every(settings.store.sweep_interval, "store-sweep", store.sweep)
    scheduler.every(CHECKPOINT_EVERY, "store-checkpoint", store.checkpoint)
    scheduler.every(3600, "job-records-expiry", records.expire, first_in=60)
    scheduler.every(settings.store.sweep_interval, "container-reaper", runner.reap_orphans)
    if fence.mode != "off":
        scheduler.every(FENCE_RECHECK, "fence", fence.settle)
    return scheduler


async def _report_engine(engine: Engine, listener: ContainerListener | None) -> None:
    """Say whether Docker is there; if it is, bind the containers' Hub listener now rather
    than at the first job."""
    status = await engine.status(fresh=True)
    if status.reachable:
        log.info("docker.connected", host=status.host, version=status.version)
        if listener is not None:
            await listener.endpoint()
    else:
        log.warning("docker.unavailable", host=status.host, error=status.error)


def run_until_signalled(settings: Settings) -> None:
    """Run the service in a fresh event loop; SIGTERM or SIGINT starts a graceful stop."""

    keep_memory_flat(os.environ)
    raise_open_files_limit()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Service(settings, environ=os.environ).run(stop)

    asyncio.run(main())
