"""The registry endpoint's own listener (`registry.listen`, 127.0.0.1:9812 by default).

Engines reach a registry mirror by `HOST:PORT`, apart from the daemon's API: the API runs jobs
and deletes entries, and engines need none of that. A port that cannot be bound is logged
and said in status; the daemon serves on without it (engines configured to use it fall back
to their upstream registries, as a mirror that does not answer makes them do).
"""

from __future__ import annotations

from aiohttp import web

from ..logs import get_logger
from ..settings import Listener

log = get_logger(__name__)

SHUTDOWN_GRACE = 5.0


class RegistryListener:
    def __init__(self, app: web.Application, listener: Listener) -> None:
        self.listener = listener
        self.address: str | None = None
        """`HOST:PORT` bound (port 0 resolved), None while not listening."""
        self.error: str | None = None
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
        self._set_up = False

    async def start(self) -> None:
        await self._runner.setup()
        self._set_up = True
        host, port = self.listener.host or "127.0.0.1", self.listener.port or 0
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            self.error = f"cannot listen on {self.listener}: {exc.strerror or exc}"
            log.warning("registry.unbound", address=str(self.listener), reason=self.error)
            return
        server = site._server  # aiohttp keeps the asyncio server here; we need the bound port
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.address = str(Listener(host=host, port=bound))
        log.info("registry.listening", address=self.address)

    @property
    def url(self) -> str | None:
        return f"http://{self.address}" if self.address else None

    async def close(self) -> None:
        if self._set_up:
            await self._runner.cleanup()
