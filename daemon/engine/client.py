"""The Docker engine connection: possibly absent, probed when asked, never blocking the loop.

The daemon must keep serving and caching resources when no engine is reachable (SPEC.md), so
the client is made lazily and a failed connection is an `EngineUnavailable`, not a crash.
The Docker SDK is synchronous; every call runs in a small thread pool of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions

from ..errors import EngineUnavailable
from ..logs import get_logger
from ..settings import DockerSettings
from ..util.clock import Clock, SystemClock
from .libpod import libpod_api

log = get_logger(__name__)
T = TypeVar("T")

_PROBE_TTL = 5.0
_API_TIMEOUT = 300
"""Per Docker API call. A busy engine (fifty containers starting at once on two cores) takes
tens of seconds to answer a create; `wait` and `logs` pass their own (no) timeout."""


@dataclass(frozen=True)
class EngineStatus:
    """What `/v1/status` says of Docker."""

    host: str
    reachable: bool
    version: str | None = None
    api_version: str | None = None
    runtimes: list[str] = field(default_factory=list)
    gpu_devices: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    """The engine's own `registry-mirrors` (Docker Hub names only)."""
    libpod_api: str | None = None
    """Podman's libpod API version (its `GET /version` names it), None for Docker: the
    registry endpoint's names are then pulled with libpod's pull (libpod.py)."""
    error: str | None = None

    @property
    def has_gpu(self) -> bool:
        """An NVIDIA runtime or CDI GPU devices: what `docker.gpu = auto` looks for."""
        return "nvidia" in self.runtimes or bool(self.gpu_devices)


class Engine:
    """One Docker client for the daemon's lifetime, re-made after the engine comes back."""

    def __init__(self, settings: DockerSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._client: docker.DockerClient | None = None
        self._status: EngineStatus | None = None
        self._probed_at = 0.0
        self._lock = asyncio.Lock()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking SDK call off the event loop, in a daemon thread of its own.

        Some calls block for as long as a job runs (`wait`) or an image downloads (`pull`).
        Executor threads are joined when the interpreter exits, so one of those would hold a
        stopping daemon until the job ended; a daemon thread does not.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: T | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        def work() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (fn(*args, **kwargs), None)
            except docker.errors.APIError as exc:  # the engine answered: callers decide
                outcome = (None, exc)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                error = EngineUnavailable(f"Docker engine at {self.settings.host}: {_reason(exc)}")
                error.__cause__ = exc
                outcome = (None, error)
            except BaseException as exc:  # handed to the awaiting task, not lost
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(settle, *outcome)

        threading.Thread(
            target=work, name=f"docker-{getattr(fn, '__name__', 'call')}", daemon=True
        ).start()
        return await future

    async def client(self) -> docker.DockerClient:
        """The connected client, or `EngineUnavailable` naming the host and the reason."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self.call(self._connect)
        return self._client

    def client_now(self) -> docker.DockerClient:
        """The client, from a thread that knows it was connected (log pumps)."""
        if self._client is None:
            raise EngineUnavailable(f"Docker engine at {self.settings.host} is not connected")
        return self._client

    def _connect(self) -> docker.DockerClient:
        try:
            return docker.DockerClient(
                base_url=self.settings.host, version="auto", timeout=_API_TIMEOUT
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(
                f"Docker engine at {self.settings.host} is not reachable: {_reason(exc)}",
                delay=5.0,
            ) from exc

    async def status(self, *, fresh: bool = False) -> EngineStatus:
        """The engine's state, probed at most every few seconds (status is polled often)."""
        if not fresh and self._status and self.clock.monotonic() - self._probed_at < _PROBE_TTL:
            return self._status
        try:
            client = await self.client()
            info = await self.call(client.info)
            version = await self.call(client.version)
            status = EngineStatus(
                host=self.settings.host,
                reachable=True,
                version=version.get("Version"),
                api_version=version.get("ApiVersion"),
                runtimes=sorted((info.get("Runtimes") or {}).keys()),
                gpu_devices=[
                    d.get("ID", "") for d in info.get("DiscoveredDevices") or [] if d.get("ID")
                ],
                registry_mirrors=list((info.get("RegistryConfig") or {}).get("Mirrors") or []),
                libpod_api=libpod_api(version),
            )
        except EngineUnavailable as exc:
            self._client = None  # re-connect next time: the engine may have restarted
            status = EngineStatus(host=self.settings.host, reachable=False, error=exc.message)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            self._client = None  # re-connect next time: the engine may have restarted
            status = EngineStatus(host=self.settings.host, reachable=False, error=_reason(exc))
        if status.reachable != (self._status.reachable if self._status else None):
            log.info("docker.status", reachable=status.reachable, error=status.error)
        self._status, self._probed_at = status, self.clock.monotonic()
        return status

    async def close(self) -> None:
        if self._client is not None:
            await self.call(self._client.close)


def _reason(exc: BaseException) -> str:
    """The innermost useful message of a docker/requests error chain."""
    text = str(exc)
    if "Connection refused" in text or "No such file or directory" in text:
        return "connection refused (is dockerd running, and is the socket path right?)"
    if "Permission denied" in text:
        return "permission denied on the socket (is the daemon's user in the docker group?)"
    return text.splitlines()[0] if text else type(exc).__name__
