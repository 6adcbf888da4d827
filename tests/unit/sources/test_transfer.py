"""The downloader's tail: a part held upstream gives half its bytes to a new part when another
part ends, and each byte reaches the sink once, through drops on either side of the split.

A real host (StaticHost) behind a FaultyProxy that holds a part's body until the test lets it
go, so which part is still streaming when another ends is the test's choice, never a race.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from daemon.settings import DownloadSettings
from daemon.sources.parts import MIN_SPLIT
from daemon.sources.transfer import WRITE_BUFFER, Transfer
from daemon.util.clock import ManualClock
from tests.conftest import assert_no_stray_tasks
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.fakes.static_host import StaticHost
from tests.unit.sources.sinks import RecordingSink

MB = 1024 * 1024
PART = 3 * MIN_SPLIT
"""A file of two parts: the second, held after `MB` bytes, has more than `2 * MIN_SPLIT` left
when the first ends, and its half less."""


@pytest.fixture
async def transfer() -> AsyncIterator[Transfer]:
    settings = DownloadSettings.model_validate({"part_size": PART})
    transfer = Transfer(settings, allow_private=True, clock=ManualClock())
    await transfer.start()
    yield transfer
    await transfer.close()
    assert_no_stray_tasks()


def ranges_asked(proxy: FaultyProxy, path: str) -> list[str]:
    return [asked for at, asked in proxy.traffic.ranges if at == path]


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("still not so after 30 s")


def served(servers: ThreadedServers, path: str, content: Content) -> FaultyProxy:
    host = StaticHost(servers)
    host.put(path, content)
    return FaultyProxy(servers, host.url)


def first_byte(asked: str) -> int:
    return int(asked.removeprefix("bytes=").split("-")[0])


async def test_a_held_part_gives_half_of_what_it_has_not_taken_when_another_part_ends(
    servers: ThreadedServers, transfer: Transfer
) -> None:
    content = Content.generated(2 * PART, seed=91)
    proxy = served(servers, "tail/a.bin", content)
    first, second = threading.Event(), threading.Event()
    proxy.faults["/tail/a.bin bytes=0-"] = Faults(hold_after=MB, hold=first)
    proxy.faults[f"/tail/a.bin bytes={PART}-"] = Faults(hold_after=MB, hold=second)
    sink = RecordingSink(content.size)
    url = f"{proxy.url}/tail/a.bin"
    try:
        async with asyncio.timeout(60):
            fetch = asyncio.ensure_future(transfer.download(url, sink, name="a", trusted=True))
            await sink.written(PART, 2 * PART)  # the second part streams, held after 1 MiB
            first.set()  # the first part ends: the second is split
            await until(lambda: len(ranges_asked(proxy, "/tail/a.bin")) == 3)
            second.set()
            await fetch
    finally:
        first.set()
        second.set()
    assert hashlib.sha256(sink.data).hexdigest() == content.sha256
    assert sum(end - start for start, end in sink.writes) == content.size  # each byte once
    full, held, new = ranges_asked(proxy, "/tail/a.bin")
    assert (full, held) == (f"bytes=0-{PART - 1}", f"bytes={PART}-{2 * PART - 1}")
    middle = first_byte(new)
    assert new == f"bytes={middle}-{2 * PART - 1}"
    # The middle of what the held part had not taken: it had taken one write at least and
    # at most the 1 MiB sent before the hold.
    assert (2 * PART + PART + WRITE_BUFFER) // 2 <= middle <= (2 * PART + PART + MB) // 2


async def test_the_new_part_and_the_held_one_each_resume_after_a_drop_to_their_own_ends(
    servers: ThreadedServers, transfer: Transfer
) -> None:
    content = Content.generated(2 * PART, seed=92)
    proxy = served(servers, "tail/b.bin", content)
    first, second = threading.Event(), threading.Event()
    proxy.faults["/tail/b.bin bytes=0-"] = Faults(hold_after=MB, hold=first)
    proxy.faults[f"/tail/b.bin bytes={PART}-"] = Faults(
        hold_after=MB, hold=second, drop_after=2 * MB, drop_times=1
    )
    # What ends where the held part did and starts elsewhere is the split's new part.
    proxy.faults[f"-{2 * PART - 1}"] = Faults(drop_after=MB, drop_times=1)
    sink = RecordingSink(content.size)
    url = f"{proxy.url}/tail/b.bin"

    def asked() -> list[str]:
        return ranges_asked(proxy, "/tail/b.bin")

    try:
        async with asyncio.timeout(60):
            fetch = asyncio.ensure_future(transfer.download(url, sink, name="b", trusted=True))
            await sink.written(PART, 2 * PART)
            first.set()
            await until(lambda: len(asked()) == 4)  # the new part dropped and asked again
            second.set()  # the held part drops at 2 MiB in, and asks for the rest of its half
            await fetch
    finally:
        first.set()
        second.set()
    assert hashlib.sha256(sink.data).hexdigest() == content.sha256
    assert sum(end - start for start, end in sink.writes) == content.size
    full, held, new, new_again, held_again = asked()
    assert (full, held) == (f"bytes=0-{PART - 1}", f"bytes={PART}-{2 * PART - 1}")
    middle = first_byte(new)
    assert new == f"bytes={middle}-{2 * PART - 1}"
    assert middle <= first_byte(new_again) <= middle + MB
    assert new_again == f"bytes={first_byte(new_again)}-{2 * PART - 1}"
    assert PART + WRITE_BUFFER <= first_byte(held_again) <= PART + 2 * MB
    assert held_again == f"bytes={first_byte(held_again)}-{middle - 1}"  # to its new end


async def test_a_small_request_during_a_large_download_waits_for_one_part_not_the_whole_file(
    servers: ThreadedServers,
) -> None:
    part = 2 * MB
    settings = DownloadSettings.model_validate({"part_size": part, "concurrency": 2})
    transfer = Transfer(settings, allow_private=True, clock=ManualClock())
    await transfer.start()
    content = Content.generated(4 * part, seed=93)
    host = StaticHost(servers)
    host.put("fair/big.bin", content)
    host.put("fair/manifest.json", Content.of(b'{"small": true}'))
    proxy = FaultyProxy(servers, host.url)
    holds = [threading.Event() for _ in range(4)]
    for n, hold in enumerate(holds):
        proxy.faults[f"/fair/big.bin bytes={n * part}-"] = Faults(hold_after=MB // 2, hold=hold)
    sink = RecordingSink(content.size)
    try:
        async with asyncio.timeout(60):
            fetch = asyncio.ensure_future(
                transfer.download(f"{proxy.url}/fair/big.bin", sink, name="big", trusted=True)
            )
            await until(lambda: len(ranges_asked(proxy, "/fair/big.bin")) == 2)  # both slots
            small = asyncio.ensure_future(
                transfer.get(f"{proxy.url}/fair/manifest.json", name="manifest", trusted=True)
            )
            holds[0].set()  # the first part ends: its slot goes to the small request
            answer = await small
            # ...while the big file's third part, asked for before it, still waits
            assert ranges_asked(proxy, "/fair/big.bin") == [
                f"bytes=0-{part - 1}",
                f"bytes={part}-{2 * part - 1}",
            ]
            for hold in holds:
                hold.set()
            await fetch
    finally:
        for hold in holds:
            hold.set()
        await transfer.close()
    assert answer.body == b'{"small": true}'
    assert hashlib.sha256(sink.data).hexdigest() == content.sha256
