"""The listener job containers reach the Hub endpoint on, and the `HF_ENDPOINT` they get.

Job containers must not reach the daemon's API (it runs jobs, deletes entries), so the `/hf`
routes get a listener of their own, serving those and `/healthz` only. It binds on an address
of this host that containers can reach: the Docker engine's default bridge gateway (what the
engine calls `host-gateway`), or `huggingface.mirror_address`. A container on the default
bridge reaches it directly; one on a network of its own goes through its own gateway to the
host, which owns that address too; a sidecar on the host network binds it like any process.
Containers name it `nosana-cache.internal`, mapped to that address by a host entry, so
`HF_ENDPOINT=http://nosana-cache.internal:<port>/hf` is the same inside every container.

It is bound when first needed (the engine may come up after the daemon) and at start-up when
the engine is there; a failure is logged and tried again a little later, and meanwhile job
containers get no `HF_ENDPOINT` (they reach the Hub themselves, as without the cache).
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from aiohttp import web

from ..clock import Clock
from ..engine.client import Engine
from ..errors import EngineError
from ..logs import get_logger
from ..settings import HuggingFaceSettings

log = get_logger(__name__)

HOSTNAME = "nosana-cache.internal"
RETRY_AFTER = 30.0
SHUTDOWN_GRACE = 5.0


class ContainerHub(NamedTuple):
    """What a job container is given: `HF_ENDPOINT`, and the `name:address` host entry."""

    url: str
    extra_host: str


class ContainerListener:
    def __init__(
        self, settings: HuggingFaceSettings, engine: Engine, app: web.Application, clock: Clock
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
        self._set_up = False
        self._bound: ContainerHub | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()

    async def endpoint(self) -> ContainerHub | None:
        """Where containers reach `/hf`, bound now if it was not; None if it cannot be."""
        if self._bound is not None:
            return self._bound
        if self._failed_at is not None and self.clock.now() - self._failed_at < RETRY_AFTER:
            return None
        async with self._lock:
            if self._bound is None:
                self._bound = await self._bind()
                self._failed_at = None if self._bound else self.clock.now()
        return self._bound

    async def _bind(self) -> ContainerHub | None:
        try:
            address = self.settings.mirror_address or await self.engine.bridge_gateway()
        except EngineError as exc:
            log.warning("hub.listener_unbound", reason=exc.message)
            return None
        if address is None:
            log.warning(
                "hub.listener_unbound",
                reason="the Docker engine has no default bridge; set huggingface.mirror_address",
            )
            return None
        if not self._set_up:
            await self._runner.setup()
            self._set_up = True
        site = web.TCPSite(self._runner, address, self.settings.mirror_port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            log.warning("hub.listener_unbound", address=address, reason=exc.strerror or str(exc))
            return None
        server = site._server  # aiohttp keeps the asyncio server here; we need the bound port
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else self.settings.mirror_port
        hub = ContainerHub(f"http://{HOSTNAME}:{port}/hf", f"{HOSTNAME}:{address}")
        log.info("hub.listening", address=f"{address}:{port}", containers_use=hub.url)
        return hub

    async def close(self) -> None:
        if self._set_up:
            await self._runner.cleanup()
