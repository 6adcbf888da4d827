"""`GET /healthz` and `GET /readyz`: what a probe asks."""

from __future__ import annotations

from typing import Literal

from ...util.wire import Omitted, body


@body
class Health:
    """The process serves (no dependency is consulted)."""

    status: Literal["ok"]


@body
class Unready:
    """One thing that keeps the node from being ready: the store, the market's list, or one
    of the market's required images and resources (`state` says how far it got)."""

    kind: str
    name: str
    state: Omitted[str] = None
    error: str | None


@body
class Readiness:
    """Whether the store works and every item the market requires is ready; what is missing
    when not."""

    status: Literal["ready", "not ready"]
    missing: Omitted[list[Unready]] = None
