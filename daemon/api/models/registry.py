"""The registry endpoint's recent image pulls in `GET /v1/status` (`registry.pulls`)."""

from __future__ import annotations

from typing import Literal

from ...registry import Pull
from ...util.wire import Instant, body


@body
class RegistryPull:
    """One image pulled through the registry endpoint (a tag, or a digest) and what its
    requests took: bytes from upstream, from the site store, from this node's store (there
    already, or brought by another pull), and the rate bytes reached the engine at, from the
    pull's first request to its last byte."""

    image: str
    repository: str
    reference: str
    digest: str | None
    private: bool
    state: Literal["pulling", "done"]
    started_at: Instant
    last_at: Instant
    seconds: float
    blobs: int
    bytes_sent: int
    bytes_from_upstream: int
    bytes_from_site: int
    bytes_from_store: int
    rate_bytes_per_s: float

    @classmethod
    def of(cls, pull: Pull) -> RegistryPull:
        return cls(
            image=pull.image,
            repository=pull.repository,
            reference=pull.reference,
            digest=pull.digest,
            private=pull.private,
            state="pulling" if pull.reading else "done",
            started_at=pull.started_at,
            last_at=pull.last_at,
            seconds=round(pull.seconds, 3),
            blobs=pull.blobs,
            bytes_sent=pull.bytes_sent,
            bytes_from_upstream=pull.bytes_from["upstream"],
            bytes_from_site=pull.bytes_from["site"],
            bytes_from_store=pull.bytes_from["store"],
            rate_bytes_per_s=round(pull.rate, 1),
        )
