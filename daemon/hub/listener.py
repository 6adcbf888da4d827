"""The listener job containers reach the Hub endpoint on, and the `HF_ENDPOINT` they get.

Job containers must not reach the daemon's API (it runs jobs, deletes entries), so the `/hf`
routes get a listener of their own, serving those and `/healthz` only. It binds on an address
this host holds on one of the engine's bridges (`engine.gateway`: the default bridge's, read
from the host, else as the engine records it, else the shared job network's), or on
`huggingface.mirror_address` when that is set. Every job container reaches it through its own
network's gateway, the host owning every bridge's address (and the fence letting the
listener's port through on any of them); a sidecar on the host network binds it like any
process. Containers name it `nosana-cache.internal`, mapped to that address by a host entry, so
`HF_ENDPOINT=http://nosana-cache.internal:<port>/hf` is the same inside every container.

It is bound when first needed (the engine may come up after the daemon) and at start-up when
the engine is there; a failure is tried again a little later, and meanwhile job containers get
no `HF_ENDPOINT` (they reach the Hub themselves, as without the cache). That would be silent,
so `report` says where it is bound, or why not and what to set: `/v1/status` shows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

from aiohttp import web

from ..engine.client import Engine
from ..engine.gateway import HostAddress, host_addresses
from ..engine.networks import Networks
from ..errors import EngineUnavailable, NosanaCacheError
from ..logs import get_logger
from ..settings import HuggingFaceSettings
from ..util.clock import Clock

log = get_logger(__name__)

HOSTNAME = "nosana-cache.internal"
RETRY_AFTER = 30.0
SHUTDOWN_GRACE = 5.0
NO_ADDRESS = "this host holds no address on a bridge of the Docker engine"
ADVICE = (
    "job containers get no HF_ENDPOINT (they download from the Hub themselves); "
    "set huggingface.mirror_address to an address of this host that they reach"
)


class ContainerHub(NamedTuple):
    """Where a job container reaches the Hub endpoint: the URL its Hub variables point at
    (`HF_ENDPOINT` and its companions, daemon/jobs/hub_env.py), and the `name:address` host
    entry that makes the URL's name resolve."""

    url: str
    extra_host: str


@dataclass(frozen=True)
class ListenerReport:
    """Where the containers' listener is, for status: `bound` (containers get `url`),
    `unbound` (they get no `HF_ENDPOINT`: `detail` says why and what to set) or `pending`
    (not tried yet: no Docker engine so far)."""

    state: Literal["bound", "unbound", "pending"]
    detail: str
    address: str | None = None
    """`host:port` bound."""
    source: str | None = None
    """How the address was chosen."""
    url: str | None = None
    """The `HF_ENDPOINT` job containers get."""
    checked_at: float | None = None


class ContainerListener:
    def __init__(
        self,
        settings: HuggingFaceSettings,
        engine: Engine,
        networks: Networks,
        app: web.Application,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.networks = networks
        self.clock = clock
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
        self._set_up = False
        self._bound: ContainerHub | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()
        self.report = ListenerReport("pending", "not bound yet: the Docker engine was not reached")

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
        """The first candidate address that binds; else the report says why none did."""
        failures: list[str] = []
        try:
            async for candidate in self._candidates():
                hub = await self._listen(candidate, failures)
                if hub is not None:
                    return hub
        except EngineUnavailable as exc:
            self._unbound("pending", f"waiting for the Docker engine: {exc.message}")
            return None
        except NosanaCacheError as exc:  # the engine refused an inspect, or the job network
            failures.append(exc.message)
        self._unbound("unbound", "; ".join(failures) or NO_ADDRESS)
        return None

    async def _candidates(self) -> AsyncIterator[HostAddress]:
        if self.settings.mirror_address:
            yield HostAddress(self.settings.mirror_address, "huggingface.mirror_address")
            return
        async for found in host_addresses(self.engine, self.networks):
            yield found

    async def _listen(self, candidate: HostAddress, failures: list[str]) -> ContainerHub | None:
        if not self._set_up:
            await self._runner.setup()
            self._set_up = True
        address, port = candidate.address, self.settings.mirror_port
        site = web.TCPSite(self._runner, address, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await site.stop()  # unregistered from the runner, which would stop it again
            failures.append(
                f"cannot listen on {address}:{port} ({candidate.source}): {exc.strerror or exc}"
            )
            return None
        server = site._server  # aiohttp keeps the asyncio server here; we need the bound port
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else port
        hub = ContainerHub(f"http://{HOSTNAME}:{port}/hf", f"{HOSTNAME}:{address}")
        log.info(
            "hub.listening",
            address=f"{address}:{port}",
            source=candidate.source,
            containers_use=hub.url,
        )
        self.report = ListenerReport(
            "bound",
            f"job containers get HF_ENDPOINT={hub.url}, {HOSTNAME} being {address} "
            f"({candidate.source})",
            address=f"{address}:{port}",
            source=candidate.source,
            url=hub.url,
            checked_at=self.clock.now(),
        )
        return hub

    def _unbound(self, state: Literal["unbound", "pending"], reason: str) -> None:
        detail = f"{reason}; {ADVICE}" if state == "unbound" else reason
        log.warning("hub.listener_unbound", reason=reason, retry_in=RETRY_AFTER)
        self.report = ListenerReport(state, detail, checked_at=self.clock.now())

    async def close(self) -> None:
        if self._set_up:
            await self._runner.cleanup()
