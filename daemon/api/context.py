"""What the handlers can reach: the components the composition root built, nothing global."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from ..cache import Cache
from ..engine.client import Engine
from ..fence import Fence
from ..hub import ContainerListener, HubMirror
from ..jobs.runner import Runner
from ..market import Market
from ..metrics import Metrics
from ..node import NodeEngineSocket
from ..registry import Pulls, RegistryListener
from ..scheduler import Scheduler
from ..settings import ApiSettings
from ..store import Store
from ..util.clock import Clock, SystemClock


@dataclass
class ApiContext:
    api: ApiSettings
    """The API's own section (its token); each component carries the settings it was built
    from (`store.settings`, `fence.plan`)."""
    engine: Engine
    store: Store
    cache: Cache
    runner: Runner
    market: Market
    scheduler: Scheduler
    metrics: Metrics
    hub: HubMirror | None = None
    """The Hub endpoint (`/hf`), unless `huggingface.mirror` is off."""
    listener: ContainerListener | None = None
    """Its listener for job containers, with the endpoint."""
    fence: Fence | None = None
    """The fence around job containers (`docker.fence`)."""
    registry: RegistryListener | None = None
    """The registry endpoint's listener, unless `registry.mirror` is off."""
    node: NodeEngineSocket | None = None
    """The engine socket for Nosana's node (`node.socket`), when it is set."""
    registry_pulls: Pulls | None = None
    """Its recent image pulls, bytes by source."""
    clock: Clock = field(default_factory=SystemClock)
    """The daemon's clock: uptime, request durations."""
    started: float = field(init=False)
    """When the API was built, on `clock.monotonic()` (uptime)."""

    def __post_init__(self) -> None:
        self.started = self.clock.monotonic()


CONTEXT = web.AppKey("context", ApiContext)


def context_of(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]
