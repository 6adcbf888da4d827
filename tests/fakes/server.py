"""Run aiohttp apps on 127.0.0.1 in a thread of their own, for tests sync and async alike.

The thread has its own event loop, so a test's loop (or a daemon subprocess) talks to the fake
over real sockets, exactly as it would talk to the real upstream.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class ThreadedServers:
    """Serve several aiohttp apps on free loopback ports from one background loop."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runners: list[web.AppRunner] = []

    def start(self) -> None:
        self._thread.start()

    def run(self, coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the servers' loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro_fn(), self._loop).result(timeout=30)

    def serve(self, app: web.Application, port: int = 0) -> str:
        """Start `app` on a free port; return its base URL (`http://127.0.0.1:PORT`)."""

        async def start() -> str:
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            self._runners.append(runner)
            server: Any = site._server
            return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

        return self.run(start)

    def stop(self) -> None:
        async def stop_all() -> None:
            for runner in self._runners:
                await runner.cleanup()

        self.run(stop_all)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
