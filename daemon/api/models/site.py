"""The site store in `GET /v1/status`, and what `POST /v1/site/gc` removed."""

from __future__ import annotations

from typing import Literal

from ...site import SiteReport
from ...site import SiteSweep as SiteSweepResult
from ...sources import TransferStats
from ...util.wire import Instant, body


@body
class SiteStatus:
    """The site store shared by a site's nodes (`site.store`; `state` off when unset), whether
    it answers, and what it saved. Bytes are counted since the daemon started: from the site
    store (verified), from upstream (every source, site store or not) and uploaded."""

    store: str | None
    state: Literal["off", "unknown", "up", "down"]
    last_error: str | None
    last_error_at: Instant
    last_ok_at: Instant
    share_private: bool
    bytes_from_site: int
    bytes_from_upstream: int
    bytes_uploaded: int
    blobs_uploaded: int
    manifests_uploaded: int
    manifest_hits: int
    manifest_misses: int
    fallbacks: int
    damaged: int
    herd_waits: int
    herd_waiting: int
    uploads_pending: int

    @classmethod
    def of(cls, report: SiteReport | None, upstream: TransferStats) -> SiteStatus:
        if report is None:
            return cls(
                store=None,
                state="off",
                last_error=None,
                last_error_at=None,
                last_ok_at=None,
                share_private=False,
                bytes_from_site=0,
                bytes_from_upstream=upstream.bytes_received,
                bytes_uploaded=0,
                blobs_uploaded=0,
                manifests_uploaded=0,
                manifest_hits=0,
                manifest_misses=0,
                fallbacks=0,
                damaged=0,
                herd_waits=0,
                herd_waiting=0,
                uploads_pending=0,
            )
        counters = report.counters
        return cls(
            store=report.store,
            state="unknown" if report.up is None else "up" if report.up else "down",
            last_error=report.last_error,
            last_error_at=report.last_error_at,
            last_ok_at=report.last_ok_at,
            share_private=report.share_private,
            bytes_from_site=counters.bytes_from_site,
            bytes_from_upstream=upstream.bytes_received,
            bytes_uploaded=counters.bytes_uploaded,
            blobs_uploaded=counters.blobs_uploaded,
            manifests_uploaded=counters.manifests_uploaded,
            manifest_hits=counters.manifest_hits,
            manifest_misses=counters.manifest_misses,
            fallbacks=counters.fallbacks,
            damaged=counters.damaged,
            herd_waits=counters.herd_waits,
            herd_waiting=counters.herd_waiting,
            uploads_pending=report.uploads_pending,
        )


@body
class SiteSweepReport:
    """What a sweep of the site store removed: manifests past their ttl, blobs no fresh
    manifest names (older than a ttl), dead claims and abandoned multipart uploads."""

    manifests_removed: int
    blobs_removed: int
    bytes_freed: int
    claims_removed: int
    uploads_aborted: int

    @classmethod
    def of(cls, result: SiteSweepResult) -> SiteSweepReport:
        return cls(
            manifests_removed=result.manifests_removed,
            blobs_removed=result.blobs_removed,
            bytes_freed=result.bytes_freed,
            claims_removed=result.claims_removed,
            uploads_aborted=result.uploads_aborted,
        )
