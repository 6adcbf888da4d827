"""How a prepared op becomes a container: its mounts (views read-only, copy-on-write layers for
`allowWrite`, the job's volumes), command, environment with earlier ops' results filled in
(`fill`), `HF_ENDPOINT` and its companions at the daemon's Hub endpoint (hub_env.py; the job's
own values win, and its record says when they take it around the cache), whether it gets a GPU
(`docker.gpu`), the job's network and its `aliases` there, and its `restart_policy` as the
engine's.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

from ..engine.containers import Bind, ContainerSpec
from ..errors import JobError
from ..logs import get_logger
from ..resources import S3Resource
from ..store import Lease
from .context import OpContext
from .definition import RestartOnFailure, RestartPolicy
from .fill import Filler
from .hub_env import bypass_reason, hub_variables
from .models import OpRecord
from .names import container_name, op_key, volume_name
from .spec import RunOp, mount_target

log = get_logger(__name__)


async def container_spec(
    ctx: OpContext, op: RunOp, record: OpRecord, leases: list[Lease]
) -> ContainerSpec:
    """The container for `op`, its resources' `leases` in the order of its resources."""
    args = op.args
    binds, volumes = await _mounts(ctx, op, record, leases)
    env = {**(args.env or {}), "NOSANA_ID": ctx.job_id}
    extra_hosts = await _hub(ctx, op, record, env)
    fill = Filler(ctx.results_of, lambda op_id: container_name(ctx.job_id, op_id))

    def filled(items: list[str] | None) -> list[str] | None:
        return fill.items(items) if items is not None else None

    return ContainerSpec(
        name=container_name(ctx.job_id, op.id),
        image=args.image,
        job_id=ctx.job_id,
        op_id=op.id,
        cmd=filled(_command(args.cmd)),
        entrypoint=filled(_command_list(args.entrypoint)),
        env={k: fill.text(v) for k, v in env.items()},
        work_dir=args.work_dir,
        binds=binds,
        volumes=volumes,
        gpu=await _wants_gpu(ctx, op, record),
        ports=[f"{p.port}/tcp" for p in args.ports()],
        extra_hosts=extra_hosts,
        network=await ctx.network(),
        aliases=_aliases(args.aliases),
        restart=docker_restart_policy(args.restart_policy),
    )


async def _hub(ctx: OpContext, op: RunOp, record: OpRecord, env: dict[str, str]) -> list[str]:
    """Point the container at the daemon's Hub endpoint (its weights come through the store):
    `HF_ENDPOINT` and its companions, each unless the job sets it; the host entry the
    endpoint's name needs. A job whose own variables go around the cache is told so."""
    reason = bypass_reason(env)
    if reason is not None:
        log.info("op.hub_bypassed", job_id=ctx.job_id, op=op.id, reason=reason)
        record.hub_bypassed = reason
    if ctx.parts.hub is None or "HF_ENDPOINT" in env:
        return []
    hub = await ctx.parts.hub()
    if hub is None:
        return []
    url, extra_host = hub
    for name, value in hub_variables(url).items():
        env.setdefault(name, value)
    return [extra_host]


def _aliases(aliases: str | list[str] | None) -> list[str]:
    if aliases is None:
        return []
    return [aliases] if isinstance(aliases, str) else list(aliases)


def docker_restart_policy(policy: RestartPolicy | None) -> dict[str, Any] | None:
    """Nosana's `restart_policy` as Docker's: `always` is `unless-stopped`, as Nosana's node
    has it (a container the daemon stopped stays stopped when the engine restarts), and
    `restart_tries` is Docker's maximum retry count (0, none given: no limit)."""
    if policy is None or policy == "no":
        return None
    if isinstance(policy, RestartOnFailure):
        return {"Name": "on-failure", "MaximumRetryCount": policy.restart_tries or 0}
    if policy == "on-failure":
        return {"Name": "on-failure", "MaximumRetryCount": 0}
    return {"Name": "unless-stopped"}  # always, unless-stopped


async def _mounts(
    ctx: OpContext, op: RunOp, record: OpRecord, leases: list[Lease]
) -> tuple[list[Bind], dict[str, str]]:
    """Bind mounts of views, and Docker volumes by name (writable layers, the job's own)."""
    binds: list[Bind] = []
    volumes: dict[str, str] = {}
    store = ctx.parts.cache.store
    for index, (resource, lease) in enumerate(zip(op.args.resources or [], leases, strict=True)):
        target = _clean_target(mount_target(resource))
        view = store.engine_view_path(lease.entry.id)
        if isinstance(resource, S3Resource) and resource.allowWrite:
            volumes[await _writable_layer(ctx, op.id, record, index, view)] = target
        else:
            binds.append(Bind(str(view), target))
    for mount in op.args.volumes or []:
        volumes[volume_name(ctx.job_id, mount.name)] = mount.dest
    return binds, volumes


async def _wants_gpu(ctx: OpContext, op: RunOp, record: OpRecord) -> bool:
    if not op.args.gpu:
        return False
    policy = ctx.parts.settings.docker.gpu
    if policy == "all":
        return True
    if policy == "none":
        log.warning("op.gpu_skipped", job_id=ctx.job_id, op=op.id)
        record.warnings.append("gpu: true, but docker.gpu = none: running without a GPU")
        return False
    status = await ctx.parts.engine.status()
    if status.has_gpu:
        return True
    raise JobError(
        f"op {op.id} asks for a GPU (gpu: true) but the Docker engine at {status.host} has "
        "no NVIDIA runtime or CDI GPUs (docker.gpu = auto); install the NVIDIA container "
        "toolkit, or set docker.gpu = none to run such ops without a GPU"
    )


async def _writable_layer(
    ctx: OpContext, op_id: str, record: OpRecord, index: int, lower: Path
) -> str:
    """A copy-on-write layer over a view (an overlay volume): the job writes, the store
    does not."""
    key = op_key(op_id)
    scratch = ctx.parts.cache.store.op_scratch(ctx.job_id, key)
    layer = str(index)
    for part in ("upper", "work"):
        await asyncio.to_thread((scratch.local / layer / part).mkdir, parents=True, exist_ok=True)
    engine = scratch.engine / layer
    name = volume_name(ctx.job_id, f"{key}-rw{index}")
    options = f"lowerdir={lower},upperdir={engine / 'upper'},workdir={engine / 'work'}"
    await ctx.parts.containers.create_volume(
        name, ctx.job_id, {"type": "overlay", "device": "overlay", "o": options}
    )
    record.writable_layers.append(name)
    return name


def _command(cmd: str | list[str] | None) -> list[str] | None:
    """A string runs through `/bin/sh -c`, a list as it is (Nosana's rule)."""
    if cmd is None:
        return None
    return ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)


def _command_list(entrypoint: str | list[str] | None) -> list[str] | None:
    if entrypoint is None:
        return None
    return shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint)


def _clean_target(target: str) -> str:
    return target.rstrip("/") or "/"
