"""Herds across nodes: when several nodes miss the same entry at once, one of them fetches it.

    settle(request)
      ├─ a fresh manifest in the site store → use it (no upstream call at all)
      ├─ claim the request: PUT fetching/<request key> with If-None-Match: *
      │    won  → this node fetches from upstream; its heartbeat keeps the claim alive until
      │           the uploader has written the manifest and `release`s it
      │    lost → another node is fetching: poll for its manifest while its heartbeat moves,
      │           up to `site.herd_wait`
      │             manifest   → use it
      │             claim gone → (the other node failed) claim again
      │             heartbeat stopped for STALE → the other node died: take the claim over
      │             herd_wait over → go upstream without a claim
      └─ the site store failing at any step raises: the caller goes upstream alone

A heartbeat is a counter in the claim's body, and a follower judges it by its own clock (it
notes when it saw the counter change), so the nodes' clocks need not agree. A store without
conditional writes answers every claim with success: every node then fetches, as without a
site store, and each still finds the others' uploads the next time.
"""

from __future__ import annotations

import asyncio
import enum
import json
from dataclasses import dataclass

from ..errors import UpstreamError, UpstreamNotFound
from ..logs import get_logger
from ..util.aiotasks import TaskSet
from ..util.clock import Clock
from .bucket import SiteBucket
from .health import SiteCounters, SiteHealth
from .layout import Layout, SiteManifest
from .manifests import Manifests

log = get_logger(__name__)

BEAT = 10.0
"""Seconds between a claim's heartbeats."""
STALE = 4 * BEAT
"""A claim whose heartbeat did not move for this long belongs to a node that stopped."""
POLL = 1.0
"""Seconds between a waiting node's looks at the site store."""


@dataclass(frozen=True)
class Settled:
    """How a miss goes on: from this manifest, or upstream (claimed for the site, or not)."""

    manifest: SiteManifest | None = None
    leading: bool = False


class _Wait(enum.Enum):
    GONE = "the claim went away without a manifest"
    STALE = "the claiming node stopped"
    TIMEOUT = "site.herd_wait passed"


class Herd:
    def __init__(
        self,
        bucket: SiteBucket,
        layout: Layout,
        manifests: Manifests,
        counters: SiteCounters,
        health: SiteHealth,
        clock: Clock,
        *,
        node: str,
        wait: float,
    ) -> None:
        self.bucket = bucket
        self.layout = layout
        self.manifests = manifests
        self.counters = counters
        self.health = health
        self.clock = clock
        self.node = node
        self.wait = wait
        self._beats: dict[str, asyncio.Task[None]] = {}
        self._tasks = TaskSet("site-herd")

    async def close(self) -> None:
        """Stop heartbeats (claims left behind go stale; the uploads resume after a restart)."""
        await self._tasks.close()
        self._beats.clear()

    async def settle(self, request_key: str, identity: str) -> Settled:
        deadline = self.clock.now() + self.wait
        while True:
            manifest = await self.manifests.find(request_key, identity, self.clock.now())
            if manifest is not None:
                return Settled(manifest)
            if await self._claim(request_key, take_over=False):
                return Settled(leading=True)
            self.counters.herd_waits += 1
            self.counters.herd_waiting += 1
            try:
                outcome = await self._wait_for(request_key, identity, deadline)
            finally:
                self.counters.herd_waiting -= 1
            if isinstance(outcome, SiteManifest):
                return Settled(outcome)
            log.info("site.herd_wait_ended", request_key=request_key, reason=outcome.value)
            if outcome is _Wait.STALE:
                await self._claim(request_key, take_over=True)
                return Settled(leading=True)
            if outcome is _Wait.TIMEOUT:
                return Settled()

    async def _wait_for(
        self, request_key: str, identity: str, deadline: float
    ) -> SiteManifest | _Wait:
        """Poll for another node's manifest while its claim is alive."""
        beat: bytes | None = None
        beat_seen = self.clock.now()
        while self.clock.now() < deadline:
            await self.clock.sleep(POLL)
            manifest = await self.manifests.find(request_key, identity, self.clock.now())
            if manifest is not None:
                return manifest
            try:
                claim = await self.bucket.get(self.layout.marker(request_key))
            except UpstreamNotFound:
                return _Wait.GONE
            if claim != beat:
                beat, beat_seen = claim, self.clock.now()
            elif self.clock.now() - beat_seen >= STALE:
                return _Wait.STALE
        return _Wait.TIMEOUT

    async def _claim(self, request_key: str, *, take_over: bool) -> bool:
        """Claim the request's fetch for this node (if no one holds it, unless `take_over`);
        a won claim beats until `release`."""
        key = self.layout.marker(request_key)
        if not await self.bucket.put(key, self._body(0), if_absent=not take_over):
            return False
        log.info("site.claimed", request_key=request_key, took_over=take_over)
        self._beats[request_key] = self._tasks.spawn(self._beat(key), f"beat:{request_key[:12]}")
        return True

    def _body(self, beat: int) -> bytes:
        return json.dumps({"node": self.node, "beat": beat}).encode()

    async def _beat(self, key: str) -> None:
        beat = 0
        while True:
            await self.clock.sleep(BEAT)
            beat += 1
            try:
                await self.bucket.put(key, self._body(beat), if_absent=False)
            except UpstreamError as exc:
                self.health.failed(exc, "claim heartbeat")

    async def release(self, request_key: str) -> None:
        """End this node's claim: stop its heartbeat and remove it, if it is still ours."""
        task = self._beats.pop(request_key, None)
        if task is not None:
            task.cancel()
        key = self.layout.marker(request_key)
        try:
            body = json.loads(await self.bucket.get(key))
            if body.get("node") == self.node:
                await self.bucket.delete([key])
        except UpstreamNotFound:
            return
        except (UpstreamError, ValueError, AttributeError) as exc:
            log.info("site.release_failed", request_key=request_key, error=str(exc))
