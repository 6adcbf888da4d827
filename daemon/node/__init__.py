"""The engine socket for Nosana's own node (`node.socket`): a pass-through proxy of the
Docker or Podman API in front of `node.engine`, which answers the resource helper from the
store and points the node's job containers at the Hub endpoint.

    proxy.py, http1.py   the pass-through (requests forwarded byte for byte, streams and
                         hijacked connections spliced)
    routes.py            what is intercepted
    helpers.py           the helper's container calls; helper_run.py its work; fill.py
                         the volume; helper_spec.py what the node asks it (confirmed calls)
    creates.py           job container creates (Docker and libpod)
    pulls.py             image pulls through the registry endpoint (engine_calls.py: the
                         daemon's own calls on the engine)
    server.py            the socket file's lifetime; record.py the recent requests
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..cache import Cache
from ..engine.pull_routes import PullRoutes
from ..errors import ConfigError
from ..settings import DockerSettings, NodeSettings
from ..util.clock import Clock, SystemClock
from .helper_run import Worker
from .helpers import Helpers
from .pulls import NodePulls
from .record import NodeRequest, NodeRequests
from .routes import HubEndpoint, NodeRoutes
from .server import NodeSocket

__all__ = ["NodeEngineSocket", "NodeReport", "NodeRequest", "engine_socket_path"]


@dataclass(frozen=True)
class NodeReport:
    """What `status` shows of the socket: where it is, the engine behind it, what it served."""

    socket: str
    engine: str
    recent: list[NodeRequest]


def engine_socket_path(node: NodeSettings, docker: DockerSettings) -> str:
    """The real engine's unix socket: `node.engine`, else `docker.host`."""
    engine = node.engine or docker.host
    path = engine.removeprefix("unix://")
    if not path.startswith("/"):
        raise ConfigError(
            "node.engine", f"{engine!r} is not a unix socket; name the engine's socket here"
        )
    return path


class NodeEngineSocket:
    """The socket, its interceptions and their record: started after the store and cache."""

    def __init__(
        self,
        settings: NodeSettings,
        docker: DockerSettings,
        cache: Cache,
        hub: HubEndpoint | None,
        *,
        allow_private: bool,
        mirror_private: bool,
        endpoint: Callable[[], str | None] = lambda: None,
        explain: Callable[[str], str | None] = lambda _name: None,
        clock: Clock | None = None,
    ) -> None:
        """`docker`: the engine's defaults and how pulls are routed, as for the daemon's own;
        `allow_private` (`security.allow_private_urls`) and `mirror_private`
        (`site.share_private`) as `Images` takes them; `endpoint`: `HOST:PORT` of the registry
        endpoint while it listens, else None; `explain`: what the endpoint last refused for a
        name (as the daemon's own pulls)."""
        self.engine = engine_socket_path(settings, docker)
        self.path = settings.socket
        self.requests = NodeRequests()
        self.worker = Worker(cache, self.requests, clock or SystemClock())
        self.helpers = Helpers(self.engine, self.worker, self.requests)
        # Routes of its own: the node's engine may not reach the endpoint where the
        # daemon's does (one given up is given up for this engine only).
        routes = PullRoutes(docker, endpoint, mirror_private=mirror_private)
        pulls = NodePulls(self.engine, routes, explain, allow_private=allow_private)
        hub = hub if settings.hub else None
        intercept = NodeRoutes(self.helpers, self.worker, hub, pulls)
        self.socket = NodeSocket(self.path, self.engine, intercept)

    async def start(self) -> None:
        await self.socket.start()

    async def close(self) -> None:
        await self.socket.close()
        await self.helpers.close()

    def report(self) -> NodeReport:
        return NodeReport(self.path, self.engine, self.requests.recent())
