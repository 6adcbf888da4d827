"""A download whose redirect target expires asks the origin again and resumes where it was.

The fake Hub redirects LFS files to a CAS bridge that signs its URLs (an HMAC over the raw
query, the expiry in it) and refuses them past their expiry as S3 does. The bridge holds a
part mid-body while the test moves the bridge's clock past the expiry, then drops or releases
it: which request sees the expired URL is the test's choice, never a race.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from daemon.errors import UpstreamAuthError
from daemon.settings import DownloadSettings
from daemon.sources.transfer import Transfer
from daemon.util.clock import ManualClock
from tests.conftest import assert_no_stray_tasks
from tests.fakes.cas_bridge import TTL, CasBridge
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.fakes.server import ThreadedServers
from tests.unit.sources.sinks import RecordingSink

MB = 1024 * 1024
PART = 4 * MB
"""Parts too small to be split at the tail (parts.py): each part's ranges are the test's."""


@pytest.fixture
def hub(servers: ThreadedServers) -> FakeHub:
    return FakeHub(servers, bridge=CasBridge(servers))


def bridge_of(hub: FakeHub) -> CasBridge:
    assert hub.bridge is not None
    return hub.bridge


async def open_transfer(concurrency: int) -> AsyncIterator[Transfer]:
    settings = DownloadSettings.model_validate({"part_size": PART, "concurrency": concurrency})
    transfer = Transfer(settings, allow_private=True, clock=ManualClock())
    await transfer.start()
    yield transfer
    await transfer.close()
    assert_no_stray_tasks()


@pytest.fixture
async def transfer() -> AsyncIterator[Transfer]:
    async for opened in open_transfer(concurrency=8):
        yield opened


@pytest.fixture
async def one_slot() -> AsyncIterator[Transfer]:
    async for opened in open_transfer(concurrency=1):
        yield opened


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """The event that lets held bodies go; set at the end whatever happened."""
    event = threading.Event()
    yield event
    event.set()


def publish(hub: FakeHub, repo: str, size: int, seed: int) -> tuple[Content, str]:
    content = Content.generated(size, seed=seed)
    hub.commit(repo, {"model.safetensors": content})
    return content, hub.file_url(repo, "model.safetensors")


def resolves(hub: FakeHub, repo: str) -> int:
    return hub.traffic.count(f"GET /{repo}/resolve/main/model.safetensors")


async def until_held(faults: Faults) -> None:
    """Return once the bridge holds the body these faults are of."""
    await asyncio.to_thread(faults.held.wait, 30)
    assert faults.held.is_set(), "the bridge never got to the hold"


def span(start: int, end: int) -> str:
    return f"bytes={start}-{end - 1}"


async def test_a_signed_location_goes_out_byte_for_byte(hub: FakeHub, transfer: Transfer) -> None:
    content, url = publish(hub, "org/bytes", MB, seed=1)
    sink = RecordingSink(content.size)
    await transfer.download(url, sink, name="bytes", trusted=True)
    assert hashlib.sha256(sink.data).hexdigest() == content.sha256
    assert bridge_of(hub).asked == [(span(0, MB), "206")]  # its HMAC over the raw query held
    location = bridge_of(hub).signed_url(content, "model.safetensors", "org/bytes")
    assert all(part in location for part in ("%2F", "%27", "+", "=="))


async def test_a_part_dropped_after_the_expiry_renews_the_redirect_and_resumes(
    hub: FakeHub, transfer: Transfer, release: threading.Event
) -> None:
    content, url = publish(hub, "org/held", 2 * PART, seed=2)
    bridge = bridge_of(hub)
    held = bridge.faults[f"{content.sha256} bytes=0-"] = Faults(
        hold_after=MB, hold=release, drop_at_release=True
    )
    sink = RecordingSink(content.size)
    async with asyncio.timeout(60):
        fetch = asyncio.ensure_future(transfer.download(url, sink, name="held", trusted=True))
        await until_held(held)  # the first part has its first MiB: held there
        await sink.written(PART, 2 * PART)  # the second was answered before the expiry
        bridge.advance(TTL + 1)
        release.set()  # the held connection drops; its retry meets the expired URL
        await fetch
    assert hashlib.sha256(sink.data).hexdigest() == content.sha256
    assert sum(end - start for start, end in sink.writes) == content.size  # each byte once
    assert bridge.asked == [
        (span(0, PART), "206"),
        (span(PART, 2 * PART), "206"),
        (span(MB, PART), "expired"),
        (span(MB, PART), "206"),  # from where it was, with a fresh redirect
    ]
    assert resolves(hub, "org/held") == 2


async def test_a_part_that_starts_after_the_expiry_renews_the_redirect(
    hub: FakeHub, one_slot: Transfer, release: threading.Event
) -> None:
    content, url = publish(hub, "org/later", 2 * PART, seed=3)
    bridge = bridge_of(hub)
    held = bridge.faults[f"{content.sha256} bytes=0-"] = Faults(hold_after=MB, hold=release)
    sink = RecordingSink(content.size)
    async with asyncio.timeout(60):
        fetch = asyncio.ensure_future(one_slot.download(url, sink, name="later", trusted=True))
        await until_held(held)
        bridge.advance(TTL + 1)
        release.set()  # the first part ends (its answer had begun); the second asks now
        await fetch
    assert hashlib.sha256(sink.data).hexdigest() == content.sha256
    assert bridge.asked == [
        (span(0, PART), "206"),
        (span(PART, 2 * PART), "expired"),
        (span(PART, 2 * PART), "206"),
    ]
    assert resolves(hub, "org/later") == 2


async def test_parts_that_meet_the_expiry_together_share_one_fresh_redirect(
    hub: FakeHub, transfer: Transfer, release: threading.Event
) -> None:
    content, url = publish(hub, "org/herd", 4 * PART, seed=4)
    bridge = bridge_of(hub)
    parts = [
        Faults(hold_after=MB, hold=release, drop_at_release=True)
        for _ in range(0, content.size, PART)
    ]
    for start, faults in zip(range(0, content.size, PART), parts, strict=True):
        bridge.faults[f"{content.sha256} bytes={start}-"] = faults
    sink = RecordingSink(content.size)
    async with asyncio.timeout(60):
        fetch = asyncio.ensure_future(transfer.download(url, sink, name="herd", trusted=True))
        for faults in parts:
            await until_held(faults)
        bridge.advance(TTL + 1)
        release.set()  # every part drops at once
        await fetch
    assert hashlib.sha256(sink.data).hexdigest() == content.sha256
    assert resolves(hub, "org/herd") == 2
    again = sorted(asked for asked, answer in bridge.asked[4:] if answer == "206")
    assert again == sorted(span(start + MB, start + PART) for start in range(0, content.size, PART))


async def test_a_target_that_refuses_a_fresh_redirect_fails_at_once(
    hub: FakeHub, transfer: Transfer
) -> None:
    content, url = publish(hub, "org/refused", 2 * PART, seed=5)
    bridge_of(hub).refuse_all = True
    with pytest.raises(UpstreamAuthError, match=r"SignatureDoesNotMatch.*right after a fresh"):
        await transfer.download(url, RecordingSink(content.size), name="refused", trusted=True)
    assert bridge_of(hub).asked == [(span(0, PART), "bad signature")]
    assert resolves(hub, "org/refused") == 1


async def test_a_renewed_target_that_still_refuses_fails_after_one_renewal(
    hub: FakeHub, transfer: Transfer, release: threading.Event
) -> None:
    content, url = publish(hub, "org/revoked", 2 * PART, seed=6)
    bridge = bridge_of(hub)
    held = bridge.faults[f"{content.sha256} bytes=0-"] = Faults(
        hold_after=MB, hold=release, drop_at_release=True
    )
    sink = RecordingSink(content.size)
    async with asyncio.timeout(60):
        fetch = asyncio.ensure_future(transfer.download(url, sink, name="revoked", trusted=True))
        await until_held(held)
        await sink.written(PART, 2 * PART)
        bridge.advance(TTL + 1)
        bridge.refuse_all = True  # the bridge's key changed: no URL of it works any more
        release.set()
        with pytest.raises(UpstreamAuthError, match="right after a fresh redirect from"):
            await fetch
    assert [answer for _, answer in bridge.asked[2:]] == ["bad signature", "bad signature"]
    assert resolves(hub, "org/revoked") == 2


async def test_a_refusal_from_the_origin_itself_is_not_renewed(
    hub: FakeHub, transfer: Transfer
) -> None:
    hub.commit("org/gated", {"model.safetensors": Content.generated(MB, seed=7)}, gated=True)
    url = hub.file_url("org/gated", "model.safetensors")
    with pytest.raises(UpstreamAuthError, match="GatedRepo") as caught:
        await transfer.download(url, RecordingSink(MB), name="gated", trusted=True)
    assert "fresh redirect" not in caught.value.message
    assert resolves(hub, "org/gated") == 1
    assert bridge_of(hub).asked == []
