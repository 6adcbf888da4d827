"""How a prepared op becomes a container's create request: its mounts (views read-only,
copy-on-write layers for `allowWrite`, the job's volumes), command, environment with earlier
ops' results filled in (`fill`), `HF_ENDPOINT` and its companions at the daemon's Hub endpoint
(hub_env.py; the job's own values win), whether it gets a GPU, the job's network and its
`aliases` there, and its `restart_policy` as the engine's.

Building the spec is pure: what it needs made or asked (overlay volumes and their folders,
the engine's GPUs, the Hub endpoint's address, the network) preparation did (`prepare`), and
its results come in as `ContainerInputs`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..engine.containers import Bind, ContainerSpec
from ..engine.shapes import RestartPolicy as EngineRestartPolicy
from ..resources import S3Resource
from .definition import RestartOnFailure, RestartPolicy
from .fill import Filler, ResultsOf
from .hub_env import hub_variables
from .names import container_name, volume_name
from .spec import RunOp, mount_target


@dataclass(frozen=True)
class ContainerInputs:
    """What preparing an op made and found out for its container (`prepare`): with the op
    and the earlier ops' results, all that its spec depends on."""

    job_id: str
    views: list[str]
    """Each resource's view as the engine names it, in the order of the op's resources."""
    layers: dict[int, str]
    """The copy-on-write layer (a volume) of each `allowWrite` resource, by its index."""
    gpu: bool
    """Whether the container gets the GPUs (`docker.gpu` and the engine already asked)."""
    hub: tuple[str, str] | None
    """The Hub endpoint's `HF_ENDPOINT` and host entry; None when it is off or not asked."""
    network: str
    """The network the container joins."""


def container_spec(op: RunOp, inputs: ContainerInputs, results_of: ResultsOf) -> ContainerSpec:
    """The create request of `op`'s container: a pure function of its arguments (no engine,
    no store, no clock), so that the same op, prepared the same way, gets the same spec."""
    args = op.args
    binds, volumes = _mounts(op, inputs)
    env = {**(args.env or {}), "NOSANA_ID": inputs.job_id}
    extra_hosts = _hub(inputs.hub, env)
    fill = Filler(results_of, lambda op_id: container_name(inputs.job_id, op_id))

    def filled(items: list[str] | None) -> list[str] | None:
        return fill.items(items) if items is not None else None

    return ContainerSpec(
        name=container_name(inputs.job_id, op.id),
        image=args.image,
        job_id=inputs.job_id,
        op_id=op.id,
        cmd=filled(_command(args.cmd)),
        entrypoint=filled(_command_list(args.entrypoint)),
        env={k: fill.text(v) for k, v in env.items()},
        work_dir=args.work_dir,
        binds=binds,
        volumes=volumes,
        gpu=inputs.gpu,
        ports=[f"{p.port}/tcp" for p in args.ports()],
        extra_hosts=extra_hosts,
        network=inputs.network,
        aliases=_aliases(args.aliases),
        restart=docker_restart_policy(args.restart_policy),
    )


def _hub(hub: tuple[str, str] | None, env: dict[str, str]) -> list[str]:
    """Point the container at the daemon's Hub endpoint (its weights come through the store):
    `HF_ENDPOINT` and its companions, each unless the job sets it; the host entry the
    endpoint's name needs."""
    if hub is None or "HF_ENDPOINT" in env:
        return []
    url, extra_host = hub
    for name, value in hub_variables(url).items():
        env.setdefault(name, value)
    return [extra_host]


def _aliases(aliases: str | list[str] | None) -> list[str]:
    if aliases is None:
        return []
    return [aliases] if isinstance(aliases, str) else list(aliases)


def docker_restart_policy(policy: RestartPolicy | None) -> EngineRestartPolicy | None:
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


def _mounts(op: RunOp, inputs: ContainerInputs) -> tuple[list[Bind], dict[str, str]]:
    """Bind mounts of views, and Docker volumes by name (writable layers, the job's own)."""
    binds: list[Bind] = []
    volumes: dict[str, str] = {}
    resources = op.args.resources or []
    for index, (resource, view) in enumerate(zip(resources, inputs.views, strict=True)):
        target = _clean_target(mount_target(resource))
        if isinstance(resource, S3Resource) and resource.allowWrite:
            volumes[inputs.layers[index]] = target
        else:
            binds.append(Bind(view, target))
    for mount in op.args.volumes or []:
        volumes[volume_name(inputs.job_id, mount.name)] = mount.dest
    return binds, volumes


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
