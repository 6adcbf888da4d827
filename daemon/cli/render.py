"""Text for people: the summaries and tables the CLI prints when `--json` is not given."""

from __future__ import annotations

from typing import Any

from ..units import human_duration, human_size


def status(body: dict[str, Any]) -> str:
    store = body.get("store", {})
    docker = body.get("docker", {})
    lines = [
        f"nosana-cache {body.get('version')}, up {human_duration(body.get('uptime_seconds', 0))}"
    ]
    limit = f", max {human_size(store['max_size'])}" if store.get("max_size") else ""
    lines.append(
        f"store    {store.get('path')}: free {human_size(store.get('fs_free_bytes', 0))}"
        f" (keeps {human_size(store.get('min_free', 0))}){limit}"
    )
    if docker.get("reachable"):
        gpu = ", GPU" if docker.get("has_gpu") else ", no GPU"
        lines.append(
            f"docker   {docker.get('host')}: engine {docker.get('version')}"
            f" (API {docker.get('api_version')}){gpu}"
        )
    else:
        lines.append(f"docker   {docker.get('host')}: unreachable: {docker.get('error')}")
    return "\n".join(lines)
