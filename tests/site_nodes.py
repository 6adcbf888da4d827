"""Nodes of one site for tests: each a cache over its own store, sharing a site store on S3.

In-process (`node()`: store, sources, site, cache, the Hub endpoint and the registry endpoint,
as the daemon composes them; `hub_endpoint()` serves a node's `/hf` over HTTP on loopback,
`registry_endpoint()` its `/v2/`) or as configuration for a
daemon process (`site_config()`); the site store is a bucket of the test bed's moto server,
one bucket per test so that tests never see each other's objects.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon.api.app import build_container_app
from daemon.cache import Cache
from daemon.hub import HubMirror
from daemon.registry import RegistryMirror, registry_app
from daemon.settings import Settings, load_settings
from daemon.site import Site
from daemon.site.journal import Journal
from daemon.site.site import JOURNAL
from daemon.sources import Sources
from daemon.store import Store
from daemon.util.clock import Clock, SystemClock
from tests.peers.s3 import REGION, S3Peer
from tests.peers.s3rver import S3rverPeer

AnyS3 = S3Peer | S3rverPeer

_buckets = itertools.count()


def new_bucket(s3: AnyS3, stem: str = "site") -> str:
    """A fresh, empty bucket on `s3`."""
    name = f"{stem}-{time.monotonic_ns()}-{next(_buckets)}"
    s3.client().create_bucket(Bucket=name)
    return name


def site_env(s3: AnyS3, bucket: str, **extra: str) -> dict[str, str]:
    """`site.*` settings for a site store in `bucket` (prefix `nodes`), as variables."""
    return {
        "NOSANA_CACHE_SITE__STORE": f"s3://{bucket}/nodes",
        "NOSANA_CACHE_SITE__ENDPOINT_URL": s3.url,
        "NOSANA_CACHE_SITE__REGION": REGION,
        "NOSANA_CACHE_SITE__ACCESS_KEY_ID": s3.access_key,
        "NOSANA_CACHE_SITE__SECRET_ACCESS_KEY": s3.secret_key,
        **extra,
    }


def site_config(s3: AnyS3, bucket: str, **extra: Any) -> dict[str, Any]:
    """The same as a daemon's `[site]` table."""
    return {
        "store": f"s3://{bucket}/nodes",
        "endpoint_url": s3.url,
        "region": REGION,
        "access_key_id": s3.access_key,
        "secret_access_key": s3.secret_key,
        **extra,
    }


def node_settings(root: Path, env: dict[str, str]) -> Settings:
    values = {
        "HOME": str(root),
        "NOSANA_CACHE_STORE__PATH": str(root / "store"),
        "NOSANA_CACHE_STORE__MIN_FREE": "0",
        "NOSANA_CACHE_DOWNLOAD__MAX_RETRIES": "2",
        "NOSANA_CACHE_DOWNLOAD__STALL_TIMEOUT": "5s",
        "NOSANA_CACHE_SECURITY__ALLOW_PRIVATE_URLS": "true",  # the upstreams are on loopback
        "NOSANA_CACHE_DOCKER__FENCE": "off",  # the host's firewall is test_fence.py's
        **env,
    }
    return load_settings(None, values)


@dataclass
class Node:
    cache: Cache
    site: Site
    hub: HubMirror
    registry: RegistryMirror

    @property
    def store(self) -> Store:
        return self.cache.store

    async def uploaded(self, timeout: float = 60) -> None:
        """Wait until this node owes the site store nothing (every upload done), fetches still
        running included: a reader of `/hf` may have had every byte before its fetch ended."""
        deadline = time.monotonic() + timeout
        while (
            self.store.fetcher.in_flight()
            or len(self.site._tasks)
            or await self.site.journal.pending()
        ):
            assert time.monotonic() < deadline, "uploads still owed"
            await asyncio.sleep(0.05)


@asynccontextmanager
async def node(root: Path, env: dict[str, str], clock: Clock | None = None) -> AsyncIterator[Node]:
    """A node as the daemon composes it: store, sources, site store, cache."""
    settings = node_settings(root, env)
    clock = clock or SystemClock()
    async with Store.open(settings.store, clock=clock) as store:
        sources = Sources(settings, clock=clock)
        await sources.start()
        try:
            async with Site.open(settings.site, settings.download, store, sources, clock) as site:
                cache = Cache(store, sources, site)
                hub = HubMirror(settings.huggingface, store, sources.hub, clock, site)
                registry = RegistryMirror(store, sources.registry, site)
                try:
                    yield Node(cache, site, hub, registry)
                finally:
                    # As the daemon stops (service.py): fetches still running are cut while
                    # the site is open, so that each settles (is owed to the site store).
                    await cache.close()
                    await store.fetcher.close()
        finally:
            await sources.close()


@asynccontextmanager
async def stopped_journal(root: Path) -> AsyncIterator[Journal]:
    """The upload journal of the node at `root` while it is stopped, as its last run left it."""
    journal = Journal(node_settings(root, {}).store.path / JOURNAL)
    await journal.open(time.time())
    try:
        yield journal
    finally:
        await journal.close()


@asynccontextmanager
async def hub_endpoint(node: Node) -> AsyncIterator[str]:
    """The node's `/hf` served on a loopback port as job containers reach it (the containers'
    app: `/hf` and `/healthz`); yields its `HF_ENDPOINT`."""
    runner = web.AppRunner(build_container_app(node.hub), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/hf"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def registry_endpoint(node: Node) -> AsyncIterator[str]:
    """The node's registry endpoint on a loopback port (as on `registry.listen`); yields its
    URL, what an engine's registry mirror is set to."""
    runner = web.AppRunner(registry_app(node.registry), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def site_objects(s3: AnyS3, bucket: str, folder: str = "") -> dict[str, bytes]:
    """What the site store holds under `nodes/<folder>`, key (relative to `nodes/`) → bytes."""
    client = s3.client()
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"nodes/{folder}"
    ):
        for item in page.get("Contents", ()):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"].removeprefix("nodes/")] = body
    return found
