"""Job containers the node creates: pointed at the Hub endpoint, nothing else changed.

Confirmed in Nosana's node: Docker's create (`provider/containerOrchestration/docker/
createDockerRunOptions.ts`, `POST /containers/create?name=`) has `Env` as `KEY=value` strings
(the job's global and op env and `NOSANA_ID`), `HostConfig.ExtraHosts` with
`host.docker.internal:8.8.8.8` and `host.containers.internal:8.8.8.8`, and the resources as
`HostConfig.Mounts` of `Type: volume` with `ReadOnly` (false only for S3 `allowWrite`).
Podman's (`podman/utils/createPodmanRunOptions.ts`, `POST /v4.5.0/libpod/containers/create`)
has `env` as an object, `hostadd` as `name:address` strings and `volumes` as
`{dest, name, Options: ["ro"] or []}`.

Each of `HF_ENDPOINT`, `HF_HUB_DISABLE_XET`, `MODEL_ENDPOINT` is added unless the job sets it,
none of them when the job sets `HF_ENDPOINT` (its clients go where it says), and the host
entry for `nosana-cache.internal` beside the node's own entries: the same as the daemon's own
job containers get (jobs/hub_env.py).
"""

from __future__ import annotations

import copy
from typing import Any

from ..hub.listener import ContainerHub
from ..jobs.hub_env import hub_variables


def docker_create(body: dict[str, Any], hub: ContainerHub) -> dict[str, Any]:
    """Docker's create body with the Hub variables and host entry."""
    env = [str(item) for item in body.get("Env") or []]
    names = {item.partition("=")[0] for item in env}
    if "HF_ENDPOINT" in names:
        return body
    changed = copy.deepcopy(body)
    added = [f"{k}={v}" for k, v in hub_variables(hub.url).items() if k not in names]
    changed["Env"] = env + added
    host = changed.setdefault("HostConfig", {}) or {}
    changed["HostConfig"] = host
    host["ExtraHosts"] = [*(host.get("ExtraHosts") or []), hub.extra_host]
    return changed


def libpod_create(body: dict[str, Any], hub: ContainerHub) -> dict[str, Any]:
    """libpod's create body (`env` an object, `hostadd` a list) likewise."""
    env = body.get("env") or {}
    if not isinstance(env, dict) or "HF_ENDPOINT" in env:
        return body
    changed = copy.deepcopy(body)
    changed["env"] = {**env, **{k: v for k, v in hub_variables(hub.url).items() if k not in env}}
    changed["hostadd"] = [*(body.get("hostadd") or []), hub.extra_host]
    return changed


def writable_volumes(body: dict[str, Any], *, libpod: bool) -> list[str]:
    """Names of the named volumes a create mounts writable."""
    if libpod:
        return [
            str(v.get("name"))
            for v in body.get("volumes") or []
            if isinstance(v, dict) and "ro" not in (v.get("Options") or [])
        ]
    host = body.get("HostConfig") or {}
    found = [
        str(m.get("Source"))
        for m in host.get("Mounts") or []
        if isinstance(m, dict) and m.get("Type") == "volume" and not m.get("ReadOnly")
    ]
    for bind in host.get("Binds") or []:
        parts = str(bind).split(":")
        if len(parts) >= 2 and "ro" not in (parts[2].split(",") if len(parts) > 2 else []):
            found.append(parts[0])
    return found
