"""Whether the site store answers, and what it has saved: for fallbacks, status and metrics.

The site store is an optimisation: when it fails, a node carries on from upstream. After a
failure reads skip it for `DOWN_FOR` seconds (so a dead store costs one timeout, not one per
file), then one read tries again; any success marks it up. Each change is logged once, as a
warning when it goes down.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NosanaCacheError
from ..logs import get_logger
from ..util.clock import Clock

log = get_logger(__name__)

DOWN_FOR = 30.0
"""Seconds reads skip a site store that just failed before they try it again."""


@dataclass
class SiteCounters:
    """Totals since start."""

    bytes_from_site: int = 0
    bytes_uploaded: int = 0
    blobs_uploaded: int = 0
    manifests_uploaded: int = 0
    manifest_hits: int = 0
    """Entries resolved from a site manifest, with no upstream metadata call."""
    manifest_misses: int = 0
    fallbacks: int = 0
    """Files the site store was to give that came from upstream instead."""
    damaged: int = 0
    """Site objects found damaged (and never served): replaced by the uploads that follow."""
    herd_waits: int = 0
    """Misses that waited for another node's fetch of the same entry."""
    herd_waiting: int = 0
    """Misses waiting for another node right now."""


class SiteHealth:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.up: bool | None = None  # None: not asked yet
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_ok_at: float | None = None

    def usable(self) -> bool:
        """Worth asking now: up, unknown, or down long enough ago to try again."""
        if self.up is not False or self.last_error_at is None:
            return True
        return self.clock.now() - self.last_error_at >= DOWN_FOR

    def ok(self) -> None:
        if self.up is False:
            log.info("site.up", after_error=self.last_error)
        self.up = True
        self.last_ok_at = self.clock.now()

    def failed(self, exc: BaseException, what: str) -> None:
        message = exc.message if isinstance(exc, NosanaCacheError) else repr(exc)
        if self.up is not False:
            log.warning("site.down", what=what, error=message, action="using upstream")
        self.up = False
        self.last_error = f"{what}: {message}"
        self.last_error_at = self.clock.now()
