"""A registry's Bearer token that expires while a blob's parts are still coming: the part it
refused gets a fresh token and goes on from the byte it had, and parts refused together share
one renewal (sources/registry_access.py, sources/redirects.py).

The token gate (tests/fakes/bearer.py) stands in front of the blob; counting proxies before
and behind it hold a request's answer, or a body mid-way, while the test expires every token
the gate has issued: which request meets the expired token is the test's choice, never a
race with a clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from daemon.settings import DockerSettings, DownloadSettings
from daemon.sources.registry_access import Grant
from daemon.sources.registry_upstream import RegistryUpstream
from daemon.sources.transfer import Transfer
from daemon.util.clock import ManualClock
from tests.conftest import assert_no_stray_tasks
from tests.fakes.bearer import BearerGate
from tests.fakes.blob_redirect import BlobRedirect
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.fakes.static_host import StaticHost
from tests.unit.sources.sinks import RecordingSink

MB = 1024 * 1024
PART = 4 * MB
"""Parts too small to be split at the tail (parts.py): each part's ranges are the test's."""
NAME = "nosana/tokened"


@dataclass
class Chain:
    """transfer → front (holds answers) → gate (tokens) → back (holds bodies) → blobs."""

    front: FaultyProxy
    gate: BearerGate
    back: FaultyProxy
    blobs: StaticHost
    cdn: StaticHost

    def publish(self, size: int, seed: int, *, redirected: bool = False) -> Content:
        content = Content.generated(size, seed=seed)
        self.blobs.put(f"v2/{NAME}/blobs/sha256:{content.sha256}", content)
        if redirected:
            self.cdn.put(f"blobs/sha256:{content.sha256}", content)
        return content

    def tokens(self) -> int:
        return self.gate.traffic.requests["GET /token"]


@pytest.fixture
def chain(servers: ThreadedServers) -> Chain:
    blobs, cdn = StaticHost(servers), StaticHost(servers)
    back = FaultyProxy(servers, blobs.url)
    redirect = BlobRedirect(servers, back.url, cdn)  # sends a blob the CDN has there
    gate = BearerGate(servers, redirect.url, lifetime=60)
    return Chain(FaultyProxy(servers, gate.url), gate, back, blobs, cdn)


async def open_upstream(chain: Chain, concurrency: int) -> AsyncIterator[RegistryUpstream]:
    settings = DownloadSettings.model_validate({"part_size": PART, "concurrency": concurrency})
    transfer = Transfer(settings, allow_private=True, clock=ManualClock())
    await transfer.start()
    docker = DockerSettings(host="unix:///x", registry_mirrors={"docker.io": chain.front.url})
    yield RegistryUpstream(docker, transfer)
    await transfer.close()
    assert_no_stray_tasks()


@pytest.fixture
async def upstream(chain: Chain) -> AsyncIterator[RegistryUpstream]:
    async for opened in open_upstream(chain, concurrency=8):
        yield opened


@pytest.fixture
async def one_slot(chain: Chain) -> AsyncIterator[RegistryUpstream]:
    async for opened in open_upstream(chain, concurrency=1):
        yield opened


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """The event that lets held requests go; set at the end whatever happened."""
    event = threading.Event()
    yield event
    event.set()


async def until_held(faults: Faults) -> None:
    await asyncio.to_thread(faults.held.wait, 30)
    assert faults.held.is_set(), "the proxy never got to the hold"


def span(start: int, end: int) -> str:
    return f"bytes={start}-{end - 1}"


def fetch(
    upstream: RegistryUpstream, content: Content, sink: RecordingSink
) -> asyncio.Future[None]:
    place = upstream.place("docker.io", private=False)
    digest = f"sha256:{content.sha256}"
    return asyncio.ensure_future(upstream.download_blob(place, NAME, digest, sink, None))


def whole(sink: RecordingSink, content: Content) -> bool:
    """The blob's digest checks, and each byte was written once (the sink refuses again)."""
    written = sum(end - start for start, end in sink.writes)
    return hashlib.sha256(sink.data).hexdigest() == content.sha256 and written == content.size


async def test_a_part_dropped_after_its_token_expired_gets_a_fresh_one_and_resumes(
    chain: Chain, upstream: RegistryUpstream, release: threading.Event
) -> None:
    content = chain.publish(2 * PART, seed=21)
    path = f"/v2/{NAME}/blobs/sha256:{content.sha256}"
    held = chain.back.faults[f"{path} bytes=0-"] = Faults(
        hold_after=MB, hold=release, drop_at_release=True
    )
    sink = RecordingSink(content.size)
    async with asyncio.timeout(60):
        fetching = fetch(upstream, content, sink)
        await until_held(held)  # the first part has its first MiB: held there
        await sink.written(PART, 2 * PART)  # the second was let in before the expiry
        assert chain.tokens() == 1
        chain.gate.expire()
        release.set()  # the held connection drops; its retry meets the expired token
        await fetching
    assert whole(sink, content)
    assert chain.gate.refused_expired == [f"GET {path} {span(MB, PART)}"]  # from where it was
    assert chain.tokens() == 2  # one renewal
    assert chain.back.traffic.ranges[-1] == (path, span(MB, PART))  # with the fresh token


async def test_parts_that_meet_the_expiry_together_share_one_fresh_token(
    chain: Chain, upstream: RegistryUpstream, release: threading.Event
) -> None:
    content = chain.publish(3 * PART, seed=22)
    path = f"/v2/{NAME}/blobs/sha256:{content.sha256}"
    held = [
        Faults(hold=release, hold_answer=True, held=threading.Event()) for _ in range(2)
    ]  # the second and third parts' requests, held before the gate looks at their token
    chain.front.faults[f"{path} bytes={PART}-"] = held[0]
    chain.front.faults[f"{path} bytes={2 * PART}-"] = held[1]
    sink = RecordingSink(content.size)
    async with asyncio.timeout(60):
        fetching = fetch(upstream, content, sink)
        for faults in held:
            await until_held(faults)
        chain.gate.expire()
        release.set()
        await fetching
    assert whole(sink, content)
    refused = sorted(chain.gate.refused_expired)
    assert refused == [
        f"GET {path} {span(PART, 2 * PART)}",
        f"GET {path} {span(2 * PART, 3 * PART)}",
    ]
    assert chain.tokens() == 2  # the first, and one renewal for both parts


async def test_a_redirect_renewed_after_the_tokens_expiry_gets_a_fresh_token_first(
    chain: Chain, one_slot: RegistryUpstream, release: threading.Event
) -> None:
    """The CDN refuses the target it gave (its signature expired, say): the origin, asked
    for a fresh redirect with the expired token, answers 401; a fresh token, then a fresh
    redirect, and the part goes on from the byte it had at the CDN."""
    content = chain.publish(2 * PART, seed=23, redirected=True)
    cdn_path = f"blobs/sha256:{content.sha256}"
    held = chain.cdn.faults[cdn_path] = Faults(hold_after=MB, hold=release, drop_at_release=True)
    sink = RecordingSink(content.size)
    async with asyncio.timeout(60):
        fetching = fetch(one_slot, content, sink)
        await until_held(held)  # the first part, at the CDN, holds its one slot
        chain.gate.expire()
        held.fail_times, held.fail_status = 1, 403  # the CDN refuses its old target once
        release.set()
        await fetching
    assert whole(sink, content)
    # Whichever part took the freed slot first met the refusal: the dropped one resuming at
    # its MiB, or the second starting.
    path = f"/v2/{NAME}/blobs/sha256:{content.sha256}"
    refused = chain.gate.refused_expired
    assert refused in ([f"GET {path} {span(MB, PART)}"], [f"GET {path} {span(PART, 2 * PART)}"])
    assert chain.tokens() == 2
    at_cdn = [asked for at, asked in chain.cdn.traffic.ranges if at == f"/{cdn_path}"]
    served = [span(0, PART), span(MB, PART), span(PART, 2 * PART)]  # from the byte it had
    assert sorted(at_cdn) == sorted(served)
    assert chain.cdn.traffic.requests[f"GET /{cdn_path}"] == len(served) + 1  # and the 403


async def test_a_grant_renews_once_for_requests_refused_together_and_near_its_expiry() -> None:
    fetched: list[str] = []

    async def fetch_token() -> tuple[str, float]:
        await asyncio.sleep(0)
        fetched.append(f"t{len(fetched) + 1}")
        return fetched[-1], time.monotonic() + 3600

    grant = Grant(fetch_token, "docker.io/nosana/x")
    sent = await grant.headers()
    assert sent == {"Authorization": "Bearer t1"}
    await asyncio.gather(*(grant.renew(sent) for _ in range(5)))  # five refused parts
    assert fetched == ["t1", "t2"]
    await grant.renew(sent)  # a late refusal of the old token: already renewed
    assert await grant.headers() == {"Authorization": "Bearer t2"}
    assert fetched == ["t1", "t2"]

    async def expiring() -> tuple[str, float]:
        fetched.append(f"t{len(fetched) + 1}")
        return fetched[-1], time.monotonic()  # already within the margin of its expiry

    soon = Grant(expiring, "docker.io/nosana/y")
    first, second = await soon.headers(), await soon.headers()
    assert first != second  # never sent once it is about to expire
