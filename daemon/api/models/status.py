"""`GET /v1/status`: what an operator asks first, one section per component."""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from ...engine.client import EngineStatus
from ...fence import FenceStatus as FenceState
from ...hub import ListenerReport
from ...market import Market
from ...node import NodeEngineSocket
from ...registry import Pulls, RegistryListener
from ...scheduler import JobHealth
from ...settings import StoreSettings
from ...store import Store, Usage
from ...util.wire import Instant, body
from .registry import RegistryPull
from .site import SiteStatus


@body
class StoreStatus:
    """Where the store is, what it holds, its limits and the room left for downloads."""

    path: str
    host_path: str
    bytes_used: int
    max_size: int | None
    min_free: int
    fs_free_bytes: int
    available_bytes: int
    ttl_seconds: float
    ttl_from: Literal["download", "last_use"]
    entries: int
    entries_by_state: dict[str, int]
    blobs: int
    hits: int
    misses: int

    @classmethod
    def of(cls, settings: StoreSettings, store: Store, usage: Usage) -> StoreStatus:
        room, states = usage.room, usage.entries_by_state
        return cls(
            path=str(settings.path),
            host_path=str(settings.engine_path),
            bytes_used=usage.bytes_used,
            max_size=settings.max_size,
            min_free=settings.min_free,
            fs_free_bytes=room.fs_free,
            available_bytes=max(0, room.available()),
            ttl_seconds=settings.ttl,
            ttl_from=settings.ttl_from,
            entries=sum(states.values()),
            entries_by_state=states,
            blobs=usage.blobs,
            hits=sum(store.stats.hits.values()),
            misses=sum(store.stats.misses.values()),
        )


@body
class DockerStatus:
    """The Docker engine as last probed; `error` says why it is not reachable."""

    host: str
    reachable: bool
    version: str | None
    api_version: str | None
    runtimes: list[str]
    gpu_devices: list[str]
    registry_mirrors: list[str]
    """The engine's own `registry-mirrors`: Docker Hub names it keeps unless
    `docker.registry_mirrors` names a Docker Hub mirror for the registry endpoint."""
    libpod_api: str | None
    """Podman's libpod API version (None for Docker): the registry endpoint's names are then
    pulled with libpod's pull."""
    error: str | None
    has_gpu: bool

    @classmethod
    def of(cls, status: EngineStatus) -> DockerStatus:
        return cls(
            host=status.host,
            reachable=status.reachable,
            version=status.version,
            api_version=status.api_version,
            runtimes=status.runtimes,
            gpu_devices=status.gpu_devices,
            registry_mirrors=status.registry_mirrors,
            libpod_api=status.libpod_api,
            error=status.error,
            has_gpu=status.has_gpu,
        )


@body
class FenceStatus:
    """Whether job containers are fenced off private networks (`docker.fence`): `state` is
    `fenced`, `unfenced` or `off`; `detail` says how it is known, or why not."""

    mode: Literal["auto", "required", "off"]
    state: Literal["fenced", "unfenced", "off"]
    detail: str
    allow: list[str]
    checked_at: Instant

    @classmethod
    def of(cls, status: FenceState, allow: list[str]) -> FenceStatus:
        return cls(
            mode=status.mode,
            state=status.state,
            detail=status.detail,
            allow=allow,
            checked_at=status.checked_at,
        )


@body
class HubListenerStatus:
    """The Hub endpoint's listener for job containers (`huggingface.mirror`). `state`:
    `bound`: job containers get `HF_ENDPOINT` = `url`, `nosana-cache.internal` mapped to the
    host part of `address` (`source` says how that address was chosen); `unbound`, a warning:
    they get no `HF_ENDPOINT` and download from the Hub themselves, `detail` says why and what
    to set; `pending`: not tried yet, no Docker engine so far; `off`: `huggingface.mirror` is
    off."""

    state: Literal["bound", "unbound", "pending", "off"]
    detail: str
    address: str | None
    source: str | None
    url: str | None
    checked_at: Instant

    @classmethod
    def of(cls, report: ListenerReport | None) -> HubListenerStatus:
        if report is None:
            return cls(
                state="off",
                detail="huggingface.mirror = false: job containers get no HF_ENDPOINT",
                address=None,
                source=None,
                url=None,
                checked_at=None,
            )
        return cls(
            state=report.state,
            detail=report.detail,
            address=report.address,
            source=report.source,
            url=report.url,
            checked_at=report.checked_at,
        )


@body
class TransferStatus:
    """Entries being fetched right now."""

    in_flight: int


@body
class MarketSummary:
    """The market in short (`GET /v1/market` has every item)."""

    address: str | None
    ready: bool
    items: int
    missing: int
    last_error: str | None

    @classmethod
    def of(cls, market: Market) -> MarketSummary:
        return cls(
            address=market.address,
            ready=market.ready(),
            items=len(market.state.items),
            missing=len(market.missing()),
            last_error=market.state.last_error,
        )


@body
class PeriodicTask:
    """A task the daemon runs on a timer (sweep, market refresh, ...), and how it went."""

    runs: int
    failures: int
    last_error: str | None
    last_run_at: Instant

    @classmethod
    def of(cls, health: JobHealth) -> PeriodicTask:
        return cls(
            runs=health.runs,
            failures=health.failures,
            last_error=health.last_error,
            last_run_at=health.last_run_at,
        )


@body
class RegistryStatus:
    """The registry endpoint (`registry.mirror`): whether it listens, and where engines point
    their registry mirror (`http://<address>`); the bytes it served since start by where they
    came from (`upstream`, `site`, `store`), and its most recent image pulls, newest first."""

    enabled: bool
    state: Literal["off", "up", "down"]
    address: str | None
    error: str | None
    bytes_by_source: dict[str, int]
    pulls: list[RegistryPull]

    @classmethod
    def of(cls, listener: RegistryListener | None, pulls: Pulls | None) -> RegistryStatus:
        state: Literal["off", "up", "down"] = "off"
        if listener is not None:
            state = "up" if listener.address else "down"
        return cls(
            enabled=listener is not None,
            state=state,
            address=listener.address if listener is not None else None,
            error=listener.error if listener is not None else None,
            bytes_by_source=dict(pulls.totals) if pulls is not None else {},
            pulls=[RegistryPull.of(p) for p in pulls.pulls()] if pulls is not None else [],
        )


@body
class NodeRequestStatus:
    """One resource the node asked its helper for, served by the daemon (or passed on)."""

    at: Instant
    type: str
    source: str
    outcome: Literal["hit", "miss", "failed", "helper"]
    """`helper`: the volume was out of the daemon's sight; the real helper ran."""
    bytes: int
    files: int
    seconds: float
    saved_seconds: float | None
    """On a hit: the entry's download time less this fill."""
    volume: str
    linked: bool
    """The volume's files are hard links to the store's blobs."""
    error: str | None


@body
class NodeSocketStatus:
    """The engine socket for Nosana's node (`node.socket`), and its recent resource requests,
    newest first."""

    enabled: bool
    socket: str | None
    engine: str | None
    recent: list[NodeRequestStatus]

    @classmethod
    def of(cls, node: NodeEngineSocket | None) -> NodeSocketStatus:
        if node is None:
            return cls(enabled=False, socket=None, engine=None, recent=[])
        report = node.report()
        recent = [NodeRequestStatus(**asdict(r)) for r in report.recent]
        return cls(enabled=True, socket=report.socket, engine=report.engine, recent=recent)


@body
class Status:
    """The daemon's version and uptime, and each component's state."""

    version: str
    uptime_seconds: float
    store: StoreStatus
    docker: DockerStatus
    fence: FenceStatus | None
    hub_listener: HubListenerStatus
    transfers: TransferStatus
    market: MarketSummary
    scheduler: dict[str, PeriodicTask]
    site: SiteStatus
    registry: RegistryStatus
    node: NodeSocketStatus
