"""Containers for job ops: create, start, logs, wait, stop, remove, through the Docker SDK.

Every container carries labels naming the daemon (and which one: `io.nosana-cache.owner`), its
job and its op, so a restarted daemon finds its own containers again, and nothing else is
ever touched. Cached views are bind mounts, read-only, with sources named as the engine sees
them (`store.host_path`). GPUs are a device request when `docker.gpu` says so. Exposed ports
are published on `docker.publish_host` (127.0.0.1 unless the operator says otherwise) on
ports the engine picks, and `ports` reports where they landed. A container may join its
job's network under aliases, and carry a restart policy that the engine acts on
(`run_state` says whether it is being restarted).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker.errors
import docker.types
import requests.exceptions

from ..errors import EngineError, EngineUnavailable, JobError
from ..logs import get_logger
from .client import Engine
from .shapes import DeviceRequest, RestartPolicy

log = get_logger(__name__)

LABEL_MANAGED = "io.nosana-cache.managed"
LABEL_JOB = "io.nosana-cache.job"
LABEL_OP = "io.nosana-cache.op"
LABEL_OWNER = "io.nosana-cache.owner"
"""Which daemon made it (a digest of its store's path): two daemons on one engine (a test
bed's, an operator trying a second store) never reap each other's containers or networks."""


def labels(owner: str, job_id: str, op_id: str | None = None) -> dict[str, str]:
    """The labels of what the daemon makes for a job."""
    made = {LABEL_MANAGED: "true", LABEL_OWNER: owner, LABEL_JOB: job_id}
    return made if op_id is None else {**made, LABEL_OP: op_id}


def ours(found: dict[str, str] | None, owner: str) -> bool:
    """Made by this daemon (or by an earlier version, which wrote no owner)."""
    return (found or {}).get(LABEL_OWNER, owner) == owner


@dataclass(frozen=True)
class Bind:
    source: str  # on the engine's host
    target: str
    read_only: bool = True


@dataclass
class ContainerSpec:
    name: str
    image: str
    job_id: str
    op_id: str
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    work_dir: str | None = None
    binds: list[Bind] = field(default_factory=list)
    volumes: dict[str, str] = field(default_factory=dict)  # docker volume name -> target
    gpu: bool = False
    ports: list[str] = field(default_factory=list)  # "8080/tcp"
    extra_hosts: list[str] = field(default_factory=list)  # "name:address" lines of /etc/hosts
    network: str | None = None
    """The job's network to join instead of the engine's default bridge."""
    aliases: list[str] = field(default_factory=list)
    """Names the container answers to on `network`."""
    restart: RestartPolicy | None = None
    """Docker's restart policy (`{"Name": "on-failure", "MaximumRetryCount": 3}`)."""


@dataclass(frozen=True)
class RunState:
    """Where a container is in its life, as the engine reports it."""

    status: str  # created, running, restarting, exited...
    restarting: bool
    exit_code: int
    restarts: int

    @property
    def ended(self) -> bool:
        """It has stopped and its restart policy will not start it again."""
        return not self.restarting and self.status not in ("running", "restarting", "created")


@dataclass(frozen=True)
class Created:
    container_id: str
    device_requests: list[DeviceRequest]  # as the engine recorded the create request


class Containers:
    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner

    async def create(self, spec: ContainerSpec) -> Created:
        client = await self.engine.client()
        api = client.api
        host_config = api.create_host_config(
            binds={
                b.source: {"bind": b.target, "mode": "ro" if b.read_only else "rw"}
                for b in spec.binds
            }
            | {name: {"bind": target, "mode": "rw"} for name, target in spec.volumes.items()},
            port_bindings=dict.fromkeys(spec.ports, (self.engine.settings.publish_host, None)),
            extra_hosts=spec.extra_hosts or None,
            device_requests=[docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
            if spec.gpu
            else None,
            network_mode=spec.network,
            restart_policy=spec.restart,
        )
        networking = None
        if spec.network is not None:
            endpoint = api.create_endpoint_config(aliases=spec.aliases or None)
            networking = api.create_networking_config({spec.network: endpoint})
        try:
            created = await self.engine.call(
                api.create_container,
                spec.image,
                command=spec.cmd,
                entrypoint=spec.entrypoint,
                environment=spec.env,
                working_dir=spec.work_dir,
                host_config=host_config,
                labels=labels(self.owner, spec.job_id, spec.op_id),
                name=spec.name,
                ports=[p.split("/")[0] for p in spec.ports] or None,
                networking_config=networking,
            )
        except docker.errors.APIError as exc:
            raise JobError(f"cannot create the container: {exc.explanation or exc}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"Docker engine: {exc}") from exc
        container_id = created["Id"]
        inspected = await self.engine.call(api.inspect_container, container_id)
        return Created(container_id, inspected["HostConfig"].get("DeviceRequests") or [])

    async def start(self, container_id: str, *, gpu: bool) -> dict[str, str]:
        """Start a created container; its published ports (`8080/tcp` → `127.0.0.1:32768`)."""
        client = await self.engine.client()
        api = client.api
        try:
            await self.engine.call(api.start, container_id)
        except docker.errors.APIError as exc:
            reason = exc.explanation or str(exc)
            if gpu and ("gpu" in reason.lower() or "device driver" in reason.lower()):
                raise JobError(
                    f"the Docker engine could not give this op a GPU: {reason} "
                    "(is the NVIDIA container runtime installed? docker.gpu)"
                ) from exc
            raise JobError(f"the container did not start: {reason}") from exc
        return await self.ports(container_id)

    async def ports(self, container_id: str) -> dict[str, str]:
        """A started container's published ports (`8080/tcp` → `127.0.0.1:32768`)."""
        client = await self.engine.client()
        try:
            inspected = await self.engine.call(client.api.inspect_container, container_id)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"Docker engine: {exc}") from exc
        return {
            port: _address(bindings[0]["HostIp"], bindings[0]["HostPort"])
            for port, bindings in (inspected["NetworkSettings"].get("Ports") or {}).items()
            if bindings
        }

    async def wait(self, container_id: str) -> int:
        """Block (in a thread) until the container exits; its exit code."""
        client = await self.engine.client()
        try:
            result = await self.engine.call(client.api.wait, container_id, timeout=None)
        except docker.errors.NotFound:
            raise JobError(f"container {container_id[:12]} disappeared") from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"Docker engine: {exc}") from exc
        return int(result.get("StatusCode", -1))

    async def state(self, container_id: str) -> dict[str, Any] | None:
        """The container's `State` (Running, ExitCode...), or None if it is gone."""
        client = await self.engine.client()
        try:
            inspected = await self.engine.call(client.api.inspect_container, container_id)
        except docker.errors.NotFound:
            return None
        state: dict[str, Any] = inspected["State"]
        return state

    async def run_state(self, container_id: str) -> RunState | None:
        """Whether the container runs, is being restarted by its policy, or has ended (and
        how often the engine restarted it); None if it is gone."""
        client = await self.engine.client()
        try:
            inspected = await self.engine.call(client.api.inspect_container, container_id)
        except docker.errors.NotFound:
            return None
        state = inspected["State"]
        return RunState(
            status=str(state.get("Status", "")),
            restarting=bool(state.get("Restarting")),
            exit_code=int(state.get("ExitCode") or 0),
            restarts=int(inspected.get("RestartCount") or 0),
        )

    async def stop(self, container_id: str, timeout: int = 10) -> None:
        client = await self.engine.client()
        try:
            await self.engine.call(client.api.stop, container_id, timeout=timeout)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot stop {container_id[:12]}: {exc.explanation}") from exc

    async def remove(self, container_id: str) -> None:
        """Best effort: a container that cannot be removed now (the engine is away) is
        found by its labels and removed later (`reap`)."""
        try:
            client = await self.engine.client()
            await self.engine.call(client.api.remove_container, container_id, force=True, v=False)
            log.info("container.removed", container=container_id[:12])
        except docker.errors.NotFound:
            return
        except (docker.errors.APIError, EngineUnavailable) as exc:
            log.warning("container.remove_failed", container=container_id[:12], error=str(exc))

    async def reap(self, active: Callable[[str, str], bool]) -> int:
        """Remove this daemon's containers whose (job, op) is not `active`: left behind by a
        kill between create and record, or by a removal the engine was not there for."""
        client = await self.engine.client()
        found: list[dict[str, Any]] = await self.engine.call(
            client.api.containers, all=True, filters={"label": [f"{LABEL_MANAGED}=true"]}
        )
        reaped = 0
        for container in found:
            found_labels = container.get("Labels") or {}
            if not ours(found_labels, self.owner):
                continue
            if not active(found_labels.get(LABEL_JOB, ""), found_labels.get(LABEL_OP, "")):
                await self.remove(container["Id"])
                reaped += 1
        if reaped:
            log.info("container.reaped", containers=reaped)
        return reaped

    def follow_logs(
        self,
        container_id: str,
        stream: str,
        on_line: Callable[[str, bytes], None],
        since: float | None = None,
    ) -> threading.Thread:
        """Copy one stream (stdout or stderr) line by line to `on_line(timestamp, line)`,
        in a thread of its own, until the container ends."""

        def pump() -> None:
            try:
                client = self.engine.client_now()
                chunks = client.api.logs(
                    container_id,
                    stdout=stream == "stdout",
                    stderr=stream == "stderr",
                    stream=True,
                    follow=True,
                    timestamps=True,
                    since=since,
                )
                pending = b""
                for chunk in chunks:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        stamp, _, text = line.partition(b" ")
                        on_line(stamp.decode(errors="replace"), text)
                if pending:
                    stamp, _, text = pending.partition(b" ")
                    on_line(stamp.decode(errors="replace"), text)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                log.warning("container.logs_ended", container=container_id[:12], error=str(exc))

        thread = threading.Thread(
            target=pump, name=f"logs-{container_id[:12]}-{stream}", daemon=True
        )
        thread.start()
        return thread

    async def create_volume(
        self, name: str, job_id: str, driver_opts: dict[str, str] | None = None
    ) -> None:
        client = await self.engine.client()
        try:
            await self.engine.call(
                client.api.create_volume,
                name,
                driver="local",
                driver_opts=driver_opts,
                labels=labels(self.owner, job_id),
            )
        except docker.errors.APIError as exc:
            raise JobError(f"cannot create volume {name}: {exc.explanation or exc}") from exc

    async def remove_volume(self, name: str) -> None:
        try:
            client = await self.engine.client()
            await self.engine.call(client.api.remove_volume, name, force=True)
        except docker.errors.NotFound:
            return
        except (docker.errors.APIError, EngineUnavailable) as exc:
            log.warning("volume.remove_failed", volume=name, error=str(exc))

    async def of_job(self, job_id: str) -> list[dict[str, Any]]:
        """This daemon's containers of one job (running or not)."""
        client = await self.engine.client()
        found: list[dict[str, Any]] = await self.engine.call(
            client.api.containers, all=True, filters={"label": [f"{LABEL_JOB}={job_id}"]}
        )
        return found


def _address(host: str, port: str) -> str:
    """`127.0.0.1:32768`, `[::1]:32768`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
