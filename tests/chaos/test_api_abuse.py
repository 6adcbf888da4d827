"""API abuse against a daemon listening beyond loopback, as a sidecar on a host network would:
no or wrong token, oversized and pathological bodies, slow clients and a thousand connections
at once. Promised: the right 4xx every time, never a 5xx, service to others throughout, and
no descriptors left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.daemon_process import DaemonProcess

TOKEN = "chaos-token-0123456789"
ROUTES = [
    ("GET", "/v1/status"),
    ("GET", "/v1/resources"),
    ("POST", "/v1/resources"),
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/market"),
    ("POST", "/v1/gc"),
    ("GET", "/metrics"),
]


@pytest.fixture
def exposed(tmp_path: Path) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(
        tmp_path,
        {
            "api": {"token": TOKEN},
            "docker": {"host": f"unix://{tmp_path}/no-docker.sock"},
        },
    )
    daemon.config["api"]["listen"] = [f"0.0.0.0:{daemon.port}"]
    daemon.start()
    try:
        yield daemon
    finally:
        assert daemon.stop() == 0
        assert "http.unexpected_error" not in daemon.log()


def open_files(daemon: DaemonProcess) -> int:
    assert daemon.process is not None
    return len(os.listdir(f"/proc/{daemon.process.pid}/fd"))


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def fetch(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: object
) -> tuple[int, str]:
    async with session.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.text()


def test_every_route_but_healthz_wants_the_exact_token(exposed: DaemonProcess) -> None:
    async def check() -> None:
        async with aiohttp.ClientSession() as session:
            status, _ = await fetch(session, "GET", exposed.url + "/healthz")
            assert status == 200
            for method, path in ROUTES:
                for headers in (
                    {},
                    auth("wrong"),
                    auth(TOKEN[:-1]),
                    auth(TOKEN + "x"),
                    {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"},
                ):
                    status, body = await fetch(session, method, exposed.url + path, headers=headers)
                    assert status == 401, (method, path, headers, body)
                    assert TOKEN not in body
                status, _ = await fetch(session, "GET", exposed.url + "/v1/status", headers=auth())
                assert status == 200

    asyncio.run(check())


def test_oversized_and_pathological_bodies_are_4xx(exposed: DaemonProcess) -> None:
    bodies: list[tuple[bytes, int]] = [
        (b'{"ops": [' + b'{"id": "x"},' * 700_000 + b"{}]}", 413),  # ~8 MiB
        (b"[" * 200_000 + b"]" * 200_000, 400),  # deeper than any parser's recursion
        (b'{"type": "HF", "repo": "\xff\xfe"}', 400),  # not UTF-8
        (b"\x00" * 1024, 400),
        (json.dumps({"type": "HF", "repo": "a/" + "b" * 100_000}).encode(), 400),
    ]

    async def check() -> None:
        async with aiohttp.ClientSession(headers=auth()) as session:
            for path in ("/v1/jobs", "/v1/resources"):
                for body, expected in bodies:
                    status, text = await fetch(
                        session,
                        "POST",
                        exposed.url + path,
                        data=body,
                        headers={"Content-Type": "application/json"},
                    )
                    assert status == expected, (path, body[:40], text[:300])
                    assert json.loads(text)["status"] == expected
            status, _ = await fetch(session, "GET", exposed.url + "/v1/status")
            assert status == 200

    asyncio.run(check())


def test_slow_clients_do_not_hold_up_the_others(exposed: DaemonProcess) -> None:
    before = open_files(exposed)

    async def check() -> None:
        slow = []
        for _ in range(300):
            _reader, writer = await asyncio.open_connection("127.0.0.1", exposed.port)
            writer.write(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            await writer.drain()
            slow.append(writer)
        started = time.monotonic()
        async with aiohttp.ClientSession(headers=auth()) as session:
            for _ in range(20):
                status, _ = await fetch(session, "GET", exposed.url + "/v1/status")
                assert status == 200
        assert time.monotonic() - started < 5
        for writer in slow:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in slow), return_exceptions=True)

    asyncio.run(check())
    deadline = time.monotonic() + 10
    while open_files(exposed) > before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_files(exposed) <= before + 5


def test_a_thousand_connections_at_once(exposed: DaemonProcess) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    before = open_files(exposed)

    async def check() -> list[int]:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector, headers=auth()) as session:

            async def one(i: int) -> int:
                path = "/v1/status" if i % 2 else "/v1/resources"
                status, _ = await fetch(session, "GET", exposed.url + path)
                return status

            return await asyncio.gather(*(one(i) for i in range(1000)))

    try:
        statuses = asyncio.run(check())
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert statuses.count(200) == 1000, sorted(set(statuses))
    deadline = time.monotonic() + 10
    while open_files(exposed) > before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_files(exposed) <= before + 5
    print(
        f"served 1000 concurrent requests; descriptors before {before}, after {open_files(exposed)}"
    )
