"""Prometheus metrics: what an operator graphs and alerts on.

Most figures are read from the components when `/metrics` is scraped (entries and bytes by
type and state, blobs, store usage and limits, jobs by state, market readiness, counters the
store keeps); durations are histograms observed as ops end, and errors are counted by kind
where they become problem responses or failed fetches. One registry per daemon, never the
process-global one, so tests and embedders can run several.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass
class Snapshot:
    """Figures gathered (asynchronously) just before a scrape renders them."""

    entries: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, state) -> n
    entry_bytes: Counter[tuple[str, str]] = field(default_factory=Counter)
    blobs: int = 0
    blob_bytes: int = 0
    fs_free: int = 0
    max_size: int | None = None
    min_free: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    market_items: int = 0
    market_missing: int = 0
    market_configured: bool = False
    hits: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)
    bytes_fetched: Counter[str] = field(default_factory=Counter)
    evictions: Counter[str] = field(default_factory=Counter)
    fetch_failures: Counter[str] = field(default_factory=Counter)
    bytes_received: int = 0
    transfers_active: int = 0
    fetches_in_flight: int = 0
    site_configured: bool = False
    site_up: bool = False
    site_bytes_read: int = 0
    site_bytes_uploaded: int = 0
    site_blobs_uploaded: int = 0
    site_manifests_uploaded: int = 0
    site_lookups: Counter[str] = field(default_factory=Counter)  # hit, miss
    site_fallbacks: int = 0
    site_damaged: int = 0
    site_herd_waits: int = 0
    site_uploads_pending: int = 0
    fenced: bool = False
    registry_configured: bool = False
    registry_up: bool = False
    registry_address: str = ""
    registry_bytes: Counter[str] = field(default_factory=Counter)  # source -> bytes served


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.snapshot = Snapshot()
        self.api_errors: Counter[str] = Counter()
        self.prepare_seconds = Histogram(
            "nosana_cache_op_prepare_seconds",
            "Time an op spent preparing (image and resources from the cache)",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "nosana_cache_op_run_seconds",
            "Time an op's container ran",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_SnapshotCollector(self))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SnapshotCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        s = self.metrics.snapshot
        yield from _store(s)
        errors = Counter({("fetch", k): v for k, v in s.fetch_failures.items()})
        errors.update({("api", k): v for k, v in self.metrics.api_errors.items()})
        yield _counter_by(
            "nosana_cache_errors", "Errors by where and kind", ["where", "kind"], errors
        )
        yield from _downloads(s)
        yield from _fence_and_registry(s)
        yield from _site(s)
        yield from _jobs_and_market(s)


def _store(s: Snapshot) -> Iterable[Metric]:
    """Entries, blobs, space and the cache's hits, misses and evictions."""
    yield _gauge_by("nosana_cache_entries", "Cache entries", ["type", "state"], s.entries)
    yield _gauge_by(
        "nosana_cache_entry_bytes", "Bytes of cache entries", ["type", "state"], s.entry_bytes
    )
    yield GaugeMetricFamily("nosana_cache_blobs", "Distinct blobs in the store", value=s.blobs)
    yield GaugeMetricFamily(
        "nosana_cache_store_bytes", "Bytes of every blob in the store", value=s.blob_bytes
    )
    yield GaugeMetricFamily(
        "nosana_cache_store_free_bytes", "Free bytes on the store's filesystem", value=s.fs_free
    )
    yield GaugeMetricFamily(
        "nosana_cache_store_max_bytes",
        "store.max_size (0: no cap)",
        value=s.max_size or 0,
    )
    yield GaugeMetricFamily("nosana_cache_store_min_free_bytes", "store.min_free", value=s.min_free)
    yield _counter_by("nosana_cache_hits", "Acquires served from the cache", ["type"], s.hits)
    yield _counter_by("nosana_cache_misses", "Acquires that fetched", ["type"], s.misses)
    yield _counter_by(
        "nosana_cache_fetched_bytes", "Bytes fetched from upstream", ["type"], s.bytes_fetched
    )
    yield _counter_by("nosana_cache_evictions", "Entries evicted", ["reason"], s.evictions)


def _downloads(s: Snapshot) -> Iterable[Metric]:
    """The downloader's bytes and connections, and the fetches under way."""
    yield CounterMetricFamily(
        "nosana_cache_received_bytes",
        "Bytes received by the downloader (rate() of it: throughput)",
        value=s.bytes_received,
    )
    yield GaugeMetricFamily(
        "nosana_cache_transfers_active",
        "Connections moving bytes now",
        value=s.transfers_active,
    )
    yield GaugeMetricFamily(
        "nosana_cache_fetches_in_flight", "Entries being fetched now", value=s.fetches_in_flight
    )


def _jobs_and_market(s: Snapshot) -> Iterable[Metric]:
    """Jobs by state and whether the market's required items are ready."""
    yield _gauge_by("nosana_cache_jobs", "Jobs by state", ["state"], Counter(s.jobs))
    yield GaugeMetricFamily(
        "nosana_cache_market_ready",
        "1 when every required item of the market is ready (1 without a market)",
        value=0 if s.market_missing else 1,
    )
    yield GaugeMetricFamily(
        "nosana_cache_market_required_items", "Items the market requires", value=s.market_items
    )
    yield GaugeMetricFamily(
        "nosana_cache_market_missing_items",
        "Required items not ready yet",
        value=s.market_missing,
    )


def _fence_and_registry(s: Snapshot) -> Iterable[Metric]:
    """The fence (`docker.fence`) and the registry endpoint (`registry.listen`)."""
    yield GaugeMetricFamily(
        "nosana_cache_fence_up",
        "1 while job containers are fenced off private networks (docker.fence), else 0",
        value=1 if s.fenced else 0,
    )
    registry = GaugeMetricFamily(
        "nosana_cache_registry_up",
        "1 while the registry endpoint listens (registry.listen; address label), else 0",
        labels=["address"],
    )
    if s.registry_configured:
        registry.add_metric([s.registry_address], 1 if s.registry_up else 0)
    yield registry
    yield _counter_by(
        "nosana_cache_registry_bytes",
        "Bytes of images pulled through the registry endpoint, by source (upstream, site, store)",
        ["source"],
        s.registry_bytes,
    )


def _site(s: Snapshot) -> Iterable[Metric]:
    """The site store (`site.store`): bytes by origin, uploads, lookups, health."""
    yield _counter_by(
        "nosana_cache_origin_bytes",
        "Bytes of files fetched, by where they came from (site store or upstream)",
        ["origin"],
        Counter({"site": s.site_bytes_read, "upstream": s.bytes_received}),
    )
    yield GaugeMetricFamily(
        "nosana_cache_site_up",
        "1 while the site store answers (0 when it does not, or is not configured)",
        value=1 if s.site_configured and s.site_up else 0,
    )
    yield CounterMetricFamily(
        "nosana_cache_site_uploaded_bytes",
        "Bytes uploaded to the site store",
        value=s.site_bytes_uploaded,
    )
    yield _counter_by(
        "nosana_cache_site_uploads",
        "Objects uploaded to the site store",
        ["kind"],
        Counter({"blob": s.site_blobs_uploaded, "manifest": s.site_manifests_uploaded}),
    )
    yield GaugeMetricFamily(
        "nosana_cache_site_uploads_pending",
        "Entries ready here whose upload to the site store is owed",
        value=s.site_uploads_pending,
    )
    yield _counter_by(
        "nosana_cache_site_lookups",
        "Misses looked up in the site store, by result (hit: no upstream metadata call)",
        ["result"],
        s.site_lookups,
    )
    yield CounterMetricFamily(
        "nosana_cache_site_fallbacks",
        "Files the site store was to give that came from upstream (down, slow, missing, damaged)",
        value=s.site_fallbacks,
    )
    yield CounterMetricFamily(
        "nosana_cache_site_damaged",
        "Site store objects found damaged (never served)",
        value=s.site_damaged,
    )
    yield CounterMetricFamily(
        "nosana_cache_site_herd_waits",
        "Misses that waited for another node's fetch of the same entry",
        value=s.site_herd_waits,
    )


def _gauge_by(name: str, doc: str, labels: list[str], values: Counter[Any]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [str(key)], value)
    return family


def _counter_by(name: str, doc: str, labels: list[str], values: Counter[Any]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [str(key)], value)
    return family
