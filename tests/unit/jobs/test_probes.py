"""One health check on the wire, against real servers on loopback: what is sent (method,
path, headers, body), what passes, and every failure as an answer in words."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from daemon.jobs.health import Answer
from daemon.jobs.models import EndpointRecord
from daemon.jobs.ports import HealthCheck, HttpHealthCheck, WebSocketHealthCheck
from daemon.jobs.probes import prober
from tests.peers.procs import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http(**fields: Any) -> HealthCheck:
    check = {"type": "http", "path": "/health", "method": "GET", "expected_status": 200}
    return HttpHealthCheck.model_validate({**check, "continuous": False, **fields})


def websocket(expected: str) -> HealthCheck:
    return WebSocketHealthCheck.model_validate(
        {"type": "websocket", "expected_response": expected, "continuous": False}
    )


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[EndpointRecord, list[dict[str, Any]]]]:
    """A real server answering every path with `handler`; the endpoint it is published as,
    and what it was asked."""
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.append(
            {
                "method": request.method,
                "path": request.raw_path,
                "headers": dict(request.headers),
                "body": body,
            }
        )
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield EndpointRecord(port=80, type="api", address=f"127.0.0.1:{server.port}"), seen
    finally:
        await server.close()


async def answer(endpoint: EndpointRecord, check: HealthCheck, timeout: float = 5.0) -> Answer:
    async with prober(timeout) as probe:
        return await probe(endpoint, check)


def status(code: int, text: str = "") -> Handler:
    async def handle(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text=text)

    return handle


async def test_a_get_passes_on_the_expected_status_and_fails_with_what_came_back() -> None:
    async with serving(status(200, "ok")) as (endpoint, seen):
        assert await answer(endpoint, http()) == Answer(True, "200 OK")
    async with serving(status(503, "loading the model\nplease wait")) as (endpoint, seen):
        assert await answer(endpoint, http()) == Answer(
            False, "503 Service Unavailable: loading the model please wait"
        )
    assert seen[0]["method"] == "GET"
    assert seen[0]["path"] == "/health"


async def test_post_and_put_send_the_headers_and_the_body_as_nosanas_node_does() -> None:
    async with serving(status(201)) as (endpoint, seen):
        check = http(
            method="POST",
            path="/v1/completions?probe=1",
            expected_status=201,
            headers={"Authorization": "Bearer t", "X-Probe": "1"},
            body={"prompt": "hi", "max_tokens": 1},
        )
        assert (await answer(endpoint, check)).passed
        assert (await answer(endpoint, http(method="PUT", body="as it is"))).passed is False
        assert (await answer(endpoint, http(body={"ignored": True}))).passed is False
    post, put, get = seen
    assert (post["method"], post["path"]) == ("POST", "/v1/completions?probe=1")
    assert post["headers"]["Authorization"] == "Bearer t"
    assert post["headers"]["X-Probe"] == "1"
    assert json.loads(post["body"]) == {"prompt": "hi", "max_tokens": 1}
    assert put["body"] == b"as it is"
    assert get["body"] == b""  # a GET carries no body


async def test_redirects_are_answers_not_followed() -> None:
    async def redirect(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    async with serving(redirect) as (endpoint, seen):
        assert await answer(endpoint, http()) == Answer(False, "302 Found")
        assert (await answer(endpoint, http(expected_status=302))).passed
    assert [s["path"] for s in seen] == ["/health", "/health"]


async def test_the_jobs_path_cannot_send_the_check_to_another_host() -> None:
    async with serving(status(200)) as (endpoint, seen):
        for path in ("@evil.example/x", "//evil.example/y", "http://evil.example/z"):
            assert (await answer(endpoint, http(path=path))).passed
    assert [s["headers"]["Host"].split(":")[0] for s in seen] == ["127.0.0.1"] * 3
    assert [s["path"] for s in seen] == [
        "/@evil.example/x",
        "//evil.example/y",
        "/http://evil.example/z",
    ]


async def test_a_port_on_every_address_is_checked_through_loopback() -> None:
    async with serving(status(200)) as (endpoint, _seen):
        assert endpoint.address is not None
        everywhere = endpoint.model_copy(
            update={"address": endpoint.address.replace("127.0.0.1", "0.0.0.0")}
        )
        assert (await answer(everywhere, http())).passed


async def test_failures_of_the_network_are_answers_in_words() -> None:
    nothing = EndpointRecord(port=80, type="api", address=f"127.0.0.1:{free_port()}")
    assert await answer(nothing, http()) == Answer(False, "connection refused")
    unpublished = EndpointRecord(port=80, type="api")
    assert await answer(unpublished, http()) == Answer(False, "not published")

    async def accept_and_say_nothing(
        _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await asyncio.sleep(3600)

    silent = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        mute = EndpointRecord(port=80, type="api", address=f"127.0.0.1:{port}")
        assert await answer(mute, http(), timeout=0.2) == Answer(False, "no answer within 0.2s")
    finally:
        silent.close()
        await silent.wait_closed()


async def test_a_websocket_check_passes_when_the_answer_holds_the_expected_text() -> None:
    async def pong(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("pong: ready")
        async for message in ws:
            if message.type == WSMsgType.CLOSE:
                break
        return ws

    async with serving(pong) as (endpoint, seen):
        assert await answer(endpoint, websocket("pong")) == Answer(
            True, "HTTP/1.1 101 Switching Protocols"
        )
        assert await answer(endpoint, websocket("Switching Protocols")) == Answer(
            True, "HTTP/1.1 101 Switching Protocols"
        )
        assert await answer(endpoint, websocket("nope")) == Answer(
            False, "HTTP/1.1 101 Switching Protocols"
        )
    assert seen[0]["path"] == "/"
    assert seen[0]["headers"]["Upgrade"] == "websocket"
    async with serving(status(404)) as (endpoint, _seen):
        refused = await answer(endpoint, websocket("pong"))
        assert refused.passed is False
        assert refused.text.startswith("HTTP/1.1 404 Not Found")


@pytest.mark.parametrize("address", ["[::1]:1", "127.0.0.1:1"])
async def test_addresses_are_read_with_and_without_brackets(address: str) -> None:
    refused = await answer(EndpointRecord(port=80, type="api", address=address), http())
    assert refused == Answer(False, "connection refused")
