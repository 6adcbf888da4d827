"""The networks job containers run on: all of them the daemon's own, so a fence can find them.

A job whose ops must reach each other (several containers, or `aliases`) gets a bridge network
of its own, `nosana-cache-job-<job id>`, where they find each other by name and no other job's
containers find them. A job of one container joins the shared `nosana-cache-jobs`, where
containers cannot reach each other (inter-container traffic off): no network to set up per
job, and none of the engine's limited address pools spent on it. No job container is left on
the engine's default bridge, where the operator's own containers live.

Every such network's Linux bridge is named `ncj-<11 hex digits>` (the fence's `BRIDGE_PREFIX`;
interface names are at most 15 bytes), a digest of the network's name and of the engine (its
ID and data root): the fence's firewall rules match job traffic by that prefix alone, and two
engines on one host (a rootless one beside the system's; a test bed's two) never claim the
same Linux bridge, which the second would take over, re-addressing it under the first one's
containers.

The job networks are labelled as the daemon's (`managed`, `owner`, `job`), as its containers
and volumes are: a restarted daemon finds its own again, removes those of jobs that ended, and
never touches another network. The shared network belongs to no daemon (several may share an
engine) and is never removed by one.

The shared network is made once however many jobs ask for it at the same moment: this
daemon's asks wait for its first one (a job's own network is asked for by that job alone,
under its own lock), and a create that loses to another daemon's (the engine refuses a second
network on the same bridge name) finds the winner's.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import docker.errors

from ..errors import EngineError, EngineUnavailable, JobError
from ..fence import BRIDGE_PREFIX
from ..logs import get_logger
from .client import Engine
from .containers import LABEL_JOB, LABEL_MANAGED, labels, ours

log = get_logger(__name__)

NETWORK_PREFIX = "nosana-cache-job-"
SHARED_NETWORK = "nosana-cache-jobs"
BRIDGE_NAME = "com.docker.network.bridge.name"
INTER_CONTAINER = "com.docker.network.bridge.enable_icc"


def network_name(job_id: str) -> str:
    """The network of a job (job ids are letters, digits, `_` and `-`: a valid name)."""
    return f"{NETWORK_PREFIX}{job_id}"


def bridge_name(network: str, engine_id: str) -> str:
    """The Linux bridge of one of the daemon's networks on one engine: the fence's prefix,
    then a digest."""
    return BRIDGE_PREFIX + hashlib.sha256(f"{engine_id}/{network}".encode()).hexdigest()[:11]


class Networks:
    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner
        self._making_shared = asyncio.Lock()

    async def ensure(self, job_id: str) -> str:
        """The job's network, made now unless it exists (a re-attached job's does)."""
        name = network_name(job_id)
        await self._ensure(name, labels(self.owner, job_id), {})
        return name

    async def shared(self) -> str:
        """The network of one-container jobs, made at first use by whichever daemon needs it."""
        async with self._making_shared:
            await self._ensure(SHARED_NETWORK, {LABEL_MANAGED: "true"}, {INTER_CONTAINER: "false"})
        return SHARED_NETWORK

    async def _ensure(self, name: str, made: dict[str, str], options: dict[str, str]) -> None:
        if not await self._found(name):
            await self._create(name, made, options)

    async def _found(self, name: str) -> bool:
        """Whether the network is there (warning if its bridge escapes the fence's match)."""
        client = await self.engine.client()
        try:
            found = await self.engine.call(client.api.inspect_network, name)
        except docker.errors.NotFound:
            return False
        bridge = (found.get("Options") or {}).get(BRIDGE_NAME, "")
        if not bridge.startswith(BRIDGE_PREFIX):
            log.warning("network.unfenceable", network=name, bridge=bridge or None)
        return True

    async def _create(self, name: str, made: dict[str, str], options: dict[str, str]) -> None:
        api = (await self.engine.client()).api
        info = await self.engine.call(api.info)
        # Engines may share an ID (it comes from /etc/docker/key.json), never a data root.
        engine_id = f"{info.get('ID') or ''}:{info.get('DockerRootDir') or ''}"
        options = {**options, BRIDGE_NAME: bridge_name(name, engine_id)}
        try:
            await self.engine.call(
                api.create_network,
                name,
                driver="bridge",
                check_duplicate=True,
                labels=made,
                options=options,
            )
        except docker.errors.APIError as exc:
            # Made meanwhile by another daemon on this engine: a 409 for the name, or (the
            # check for it being racy) a refusal of the second network on the same bridge.
            if exc.status_code == 409 or await self._found(name):
                return
            raise JobError(f"cannot create the job network {name}: {exc.explanation}") from exc
        log.info("network.created", network=name, bridge=options[BRIDGE_NAME])

    async def remove(self, job_id: str) -> None:
        """Best effort: a network that cannot go now (the engine is away) goes with `reap`."""
        name = network_name(job_id)
        try:
            client = await self.engine.client()
            await self.engine.call(client.api.remove_network, name)
            log.info("network.removed", network=name)
        except docker.errors.NotFound:
            return
        except (docker.errors.APIError, EngineUnavailable) as exc:
            log.warning("network.remove_failed", network=name, error=str(exc))

    async def reap(self, active: Callable[[str], bool]) -> int:
        """Remove this daemon's networks whose job is not `active` (left by a kill, or by an
        engine that was away when the job ended)."""
        client = await self.engine.client()
        try:
            found: list[dict[str, Any]] = await self.engine.call(
                client.api.networks, filters={"label": [f"{LABEL_MANAGED}=true"]}
            )
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot list networks: {exc.explanation}") from exc
        reaped = 0
        for network in found:
            found_labels = network.get("Labels") or {}
            job_id = found_labels.get(LABEL_JOB, "")
            if job_id and ours(found_labels, self.owner) and not active(job_id):
                await self.remove(job_id)
                reaped += 1
        return reaped
