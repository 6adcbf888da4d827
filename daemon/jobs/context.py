"""What an op is given to do its work, spelled out instead of reached for through its job.

The runner builds `Components` once; each job run adds its id, its `JobControl` (how the job
is being ended, which its ops consult when they are cancelled), how to read an earlier op's
results, and how to save the job's record. An op holds nothing else of its job, so ops and
the runner need not know each other's classes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..cache import Cache
from ..engine.client import Engine
from ..engine.containers import Containers
from ..engine.images import Images
from ..engine.networks import Networks
from ..metrics import Metrics
from ..settings import GpuPolicy, JobsSettings
from ..util.clock import Clock
from .models import Results
from .records import JobRecords

HubAddress = Callable[[], Awaitable[tuple[str, str] | None]]
"""Where job containers reach the daemon's Hub endpoint, while it is up: their `HF_ENDPOINT`,
and the `name:address` host entry that makes its name resolve."""


@dataclass(frozen=True)
class Components:
    """The daemon's parts that jobs use, as the composition root built them."""

    jobs: JobsSettings
    gpu: GpuPolicy
    """`docker.gpu`: whether job containers ask for GPUs."""
    records: JobRecords
    cache: Cache
    images: Images
    engine: Engine
    containers: Containers
    networks: Networks
    metrics: Metrics
    clock: Clock
    """The runner's clock: the records' times, health checks' pauses and timeouts."""
    hub: HubAddress | None = None


@dataclass
class JobControl:
    """How a job is being ended: set by its run, read by its ops when they are cancelled."""

    stop_reason: str | None = None
    """Why the job is being stopped (a request, another op's failure); None while it is not."""
    detached: bool = False
    """The daemon is stopping: leave the containers running, to be re-attached at restart."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when an op became ready: ops that depend on it may start before it ends."""


@dataclass(frozen=True)
class OpContext:
    parts: Components
    job_id: str
    control: JobControl
    results_of: Callable[[str], Results | None]
    """An earlier op's results by its id (for `%%ops.<id>.results.<name>%%`); None when the
    job has no such op."""
    save: Callable[[], Awaitable[None]]
    """Save the job's record, which holds this op's: after every change an API reader should
    see."""
    network: Callable[[], Awaitable[str]]
    """The network the job's containers join, made at the first call (`engine.networks`)."""
