"""Job networks: a bridge network of its own for a job whose ops must reach each other, so
that they find each other by name (their `aliases`, their container names) and no other job's
containers find them.

Every network the daemon makes is named `nosana-cache-job-<job id>` and labelled as the
daemon's (`io.nosana-cache.managed`, `.owner`, `.job`), as its containers and volumes are: a
restarted daemon finds its own again, removes those of jobs that ended, and never touches
another network. The name prefix and the label are what a firewall rule (a fence
around job containers) can match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker.errors

from ..errors import EngineError, EngineUnavailable, JobError
from ..logs import get_logger
from .client import Engine
from .containers import LABEL_JOB, LABEL_MANAGED, labels, ours

log = get_logger(__name__)

NETWORK_PREFIX = "nosana-cache-job-"


def network_name(job_id: str) -> str:
    """The network of a job (job ids are letters, digits, `_` and `-`: a valid name)."""
    return f"{NETWORK_PREFIX}{job_id}"


class Networks:
    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner

    async def ensure(self, job_id: str) -> str:
        """The job's network, made now unless it exists (a re-attached job's does)."""
        name = network_name(job_id)
        client = await self.engine.client()
        api = client.api
        try:
            await self.engine.call(api.inspect_network, name)
            return name
        except docker.errors.NotFound:
            pass
        made = labels(self.owner, job_id)
        try:
            await self.engine.call(
                api.create_network, name, driver="bridge", check_duplicate=True, labels=made
            )
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # made meanwhile
                return name
            raise JobError(f"cannot create the job's network {name}: {exc.explanation}") from exc
        log.info("network.created", network=name)
        return name

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
