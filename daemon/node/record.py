"""The node's recent resource requests, for `nosana-cache status`: hit or miss, bytes, time.

Kept in memory, the last `KEPT` only: an operator asks "did the cache serve the node's last
jobs", not for a history (the store's entries and hits are that).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

KEPT = 50


@dataclass(frozen=True)
class NodeRequest:
    at: float
    type: str
    source: str
    outcome: Literal["hit", "miss", "failed", "helper"]
    """`helper`: passed on to the real helper (the volume was out of the daemon's sight)."""
    bytes: int
    files: int
    seconds: float
    saved_seconds: float | None
    """On a hit: how long the entry's download took, less this fill (what a helper's sync
    would at least have cost)."""
    volume: str
    linked: bool
    """The volume's files are hard links to the store's blobs (else copies)."""
    error: str | None = None


class NodeRequests:
    def __init__(self) -> None:
        self._recent: deque[NodeRequest] = deque(maxlen=KEPT)

    def add(self, request: NodeRequest) -> None:
        self._recent.append(request)

    def recent(self) -> list[NodeRequest]:
        """Newest first."""
        return list(reversed(self._recent))
