"""The composition root: builds every component from `Settings`, in order, and tears down.

Start-up order: store (with crash recovery) → sources (HTTP sessions) → cache (resuming what
the last run left unfinished) → Docker engine (absent is fine) → scheduler (the store sweep)
→ API listeners. Shutdown runs the same
stack backwards: the API stops accepting first, then in-flight work is finished or cut, then
the store closes. Signal handlers only set the stop event (uvicorn, kopf do the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

from .aiotasks import TaskSet
from .api.app import build_app
from .api.context import ApiContext
from .api.server import serve
from .cache import Cache
from .clock import Clock, SystemClock
from .engine.client import Engine
from .logs import get_logger
from .scheduler import Scheduler
from .settings import Settings
from .sources import Sources
from .store import Store

log = get_logger(__name__)

SHUTDOWN_TIMEOUT = 15.0
"""Upper bound on a graceful stop; systemd's TimeoutStopSec is set above it."""


class Service:
    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()

    async def run(
        self, stop: asyncio.Event, on_ready: Callable[[list[str]], None] | None = None
    ) -> None:
        """Serve until `stop` is set; then shut down in reverse order within a bounded time."""
        stack = contextlib.AsyncExitStack()
        try:
            store = await stack.enter_async_context(
                Store.open(self.settings.store, clock=self.clock)
            )
            await store.release_holders(lambda _holder: False)
            sources = Sources(self.settings)
            await sources.start()
            stack.push_async_callback(sources.close)
            cache = Cache(store, sources)
            stack.push_async_callback(cache.close)
            resumed = cache.resume_unfinished(await store.unfinished())
            if resumed:
                log.info("daemon.resuming_downloads", count=resumed)
            engine = Engine(self.settings.docker)
            stack.push_async_callback(engine.close)
            background = TaskSet("service")
            stack.push_async_callback(background.close)
            scheduler = Scheduler()
            scheduler.every(self.settings.store.sweep_interval, "store-sweep", store.sweep)
            scheduler.start()
            stack.push_async_callback(scheduler.stop)
            context = ApiContext(
                settings=self.settings,
                engine=engine,
                store=store,
                cache=cache,
                scheduler=scheduler,
            )
            app = build_app(context)
            bound = await stack.enter_async_context(serve(app, self.settings.api.listen))
            background.spawn(_report_engine(engine), "docker-probe")
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


async def _report_engine(engine: Engine) -> None:
    status = await engine.status(fresh=True)
    if status.reachable:
        log.info("docker.connected", host=status.host, version=status.version)
    else:
        log.warning("docker.unavailable", host=status.host, error=status.error)


def run_until_signalled(settings: Settings) -> None:
    """Run the service in a fresh event loop; SIGTERM or SIGINT starts a graceful stop."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Service(settings).run(stop)

    asyncio.run(main())
