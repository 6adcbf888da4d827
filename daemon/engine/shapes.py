"""Docker's JSON objects that leave the engine layer: what the daemon sends the engine and
keeps of its answers, typed as the Engine API declares them (`container.DeviceRequest`,
`container.RestartPolicy`).

TypedDicts, not models: they are the engine's JSON as it is, handed to the Docker SDK as dicts
and kept in the job record (and served by `GET /v1/jobs/{id}`) key for key. pydantic reads
them only when a saved record is loaded; it needs `typing_extensions.TypedDict` before
Python 3.12.
"""

from __future__ import annotations

from typing import Literal, NotRequired

from pydantic import ConfigDict
from typing_extensions import TypedDict


class DeviceRequest(TypedDict, total=False):
    """One device request of a container (the GPUs), as the engine reported it."""

    # Docker always sends the five keys, in this order (the order a loaded record keeps).
    # None is required and other keys are kept: the record holds whatever the engine (Docker,
    # Podman's compatible API, another version) answered, and must load after a restart.
    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    Driver: str
    Count: int
    """How many devices; -1 is all of them."""
    DeviceIDs: list[str] | None
    Capabilities: list[list[str]] | None
    """An OR list of AND lists (`[["gpu"]]`)."""
    Options: dict[str, str] | None


class RestartPolicy(TypedDict):
    """A container's restart policy, as the daemon asks the engine for it."""

    Name: Literal["", "no", "always", "unless-stopped", "on-failure"]
    MaximumRetryCount: NotRequired[int]
    """With `on-failure`: how often it is restarted; 0 is no limit."""
