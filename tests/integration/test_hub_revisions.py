"""Revisions through the store, in-process against the fake hub, on a manual clock: a revision
is asked upstream once per ttl, a commit already listed not at all, and while upstream is
down the newest listing the store still has keeps serving, files included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.errors import UpstreamUnavailable
from daemon.hub import HubMirror
from daemon.sources import Sources
from daemon.sources.hub_listing import RepoRef
from daemon.store import Store
from daemon.util.clock import ManualClock
from tests.conftest import assert_no_stray_tasks
from tests.fakes.hf_hub import FakeHub
from tests.integration.conftest import peer_settings

TTL = 86400.0  # store.ttl by default


@pytest.fixture
async def mirror(tmp_path: Path, hub: FakeHub) -> AsyncIterator[HubMirror]:
    settings = peer_settings(tmp_path, hub, None, NOSANA_CACHE_DOWNLOAD__MAX_RETRIES="0")
    clock = ManualClock()
    async with Store.open(settings.store, clock=clock) as store:
        sources = Sources(settings, clock=clock)
        await sources.start()
        try:
            yield HubMirror(settings.huggingface, store, sources.hub, clock)
        finally:
            await sources.close()
    assert_no_stray_tasks()


def clock_of(mirror: HubMirror) -> ManualClock:
    clock = mirror.store.parts.clock
    assert isinstance(clock, ManualClock)
    return clock


async def read(mirror: HubMirror, repo: RepoRef, path: str) -> bytes:
    listing, entry = await mirror.file(repo, "main", path, None)
    stream = await mirror.open(listing, entry, None)
    try:
        return b"".join([chunk async for chunk in stream.chunks(0, entry.size)])
    finally:
        await stream.close()


async def test_a_revision_is_asked_upstream_once_per_ttl(mirror: HubMirror, hub: FakeHub) -> None:
    repo = RepoRef("model", "hubtest/rev-ttl")
    first = hub.commit(repo.id, {"a.txt": b"one"})
    asked = f"GET /api/models/{repo.id}/revision/main"
    for _ in range(3):
        assert (await mirror.listing(repo, "main", None)).commit == first
    assert hub.traffic.count(asked) == 1
    second = hub.commit(repo.id, {"a.txt": b"two"})
    assert (await mirror.listing(repo, "main", None)).commit == first  # still within the ttl
    clock_of(mirror).advance(TTL + 1)
    assert (await mirror.listing(repo, "main", None)).commit == second
    assert hub.traffic.count(asked) == 2


async def test_a_commit_already_listed_needs_no_upstream(mirror: HubMirror, hub: FakeHub) -> None:
    repo = RepoRef("model", "hubtest/rev-commit")
    commit = hub.commit(repo.id, {"a.txt": b"one", "b/c.txt": b"two"})
    listing = await mirror.listing(repo, "main", None)
    before = hub.traffic.total()
    by_commit = await mirror.listing(repo, commit, None)
    assert by_commit.entries == listing.entries
    assert hub.traffic.total() == before


async def test_an_expired_revision_and_its_files_serve_while_upstream_is_down(
    mirror: HubMirror, hub: FakeHub
) -> None:
    repo = RepoRef("model", "hubtest/rev-outage")
    commit = hub.commit(repo.id, {"config.json": b'{"a": 1}', "other.json": b"{}"})
    assert await read(mirror, repo, "config.json") == b'{"a": 1}'
    clock_of(mirror).advance(TTL + 1)  # the revision and the file have expired, not gone
    hub.down = True
    try:
        assert (await mirror.listing(repo, "main", None)).commit == commit
        assert await read(mirror, repo, "config.json") == b'{"a": 1}'
        with pytest.raises(UpstreamUnavailable):
            await read(mirror, repo, "other.json")  # never fetched: nothing to serve
        with pytest.raises(UpstreamUnavailable):
            await mirror.listing(RepoRef("model", "hubtest/never-seen"), "main", None)
    finally:
        hub.down = False
