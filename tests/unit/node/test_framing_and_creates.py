"""The engine socket's pieces without an engine: body framing, the helper's command read
back into a resource, and job creates given the Hub variables (Docker's and libpod's)."""

from __future__ import annotations

import asyncio

import pytest

from daemon.errors import InvalidInput
from daemon.hub.listener import ContainerHub
from daemon.node.creates import docker_create, libpod_create, writable_volumes
from daemon.node.helper_spec import frame, helper_resource, is_helper
from daemon.node.http1 import copy_body, parse_request, parse_response, read_body

HUB = ContainerHub("http://nosana-cache.internal:9811/hf", "nosana-cache.internal:172.17.0.1")


async def _copied(data: bytes, framing: tuple[str, int]) -> bytes:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    out = asyncio.StreamReader()

    class Sink:
        def write(self, piece: bytes) -> None:
            out.feed_data(piece)

        async def drain(self) -> None:
            return None

    await copy_body(reader, Sink(), framing)  # type: ignore[arg-type]
    out.feed_eof()
    return await out.read()


async def test_a_chunked_body_is_copied_with_its_framing_and_nothing_after_it() -> None:
    body = b"5\r\nhello\r\n0\r\n\r\n"
    assert await _copied(body + b"GET / HTTP/1.1\r\n", ("chunked", 0)) == body


async def test_read_body_dechunks() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b'3\r\n{"a\r\n2\r\n":\r\n2\r\n1}\r\n0\r\n\r\n')
    assert await read_body(reader, ("chunked", 0)) == b'{"a":1}'


def test_response_framing() -> None:
    assert parse_response(b"HTTP/1.1 101 UPGRADED\r\n\r\n").framing("POST") == ("none", 0)
    assert parse_response(b"HTTP/1.1 200 OK\r\n\r\n").framing("POST") == ("close", 0)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
    assert parse_response(head).framing("HEAD") == ("none", 0)
    assert parse_request(b"GET /v1.41/info HTTP/1.1\r\nHost: x\r\n\r\n").path == "/v1.41/info"


def test_the_helpers_commands_are_the_resources_a_job_declares() -> None:
    body = {
        "Image": "registry.hub.docker.com/nosana/resource-manager:v1.1.19",
        "Cmd": ["S3", "s3://bucket/models/x", "a.bin,b.bin"],
        "Env": ["", "REGION=eu", "ACCESS_KEY_ID=AK", "SECRET_ACCESS_KEY=SK"],
    }
    assert is_helper(body)
    resource = helper_resource(body)
    assert resource.model_dump(exclude_none=True)["files"] == ["a.bin", "b.bin"]
    assert resource.IAM is not None  # type: ignore[union-attr]
    hf = helper_resource({**body, "Cmd": ["HF", "org/repo", "", ""], "Env": None})
    assert hf.model_dump(exclude_none=True) == {"type": "HF", "repo": "org/repo"}
    assert not is_helper({**body, "Image": "nosana/other:1"})
    with pytest.raises(InvalidInput):
        helper_resource({**body, "Cmd": ["HF", "../bad", "", ""]})


def test_a_multiplexed_frame_is_what_the_node_slices() -> None:
    line = b'{"event":"status"}\n'
    framed = frame(1, line, tty=False)
    assert framed[:4] == b"\x01\x00\x00\x00"
    assert framed[8:-1] == line[:-1]
    assert frame(1, line, tty=True) == line


def test_docker_create_gets_the_hub_unless_the_job_sets_it() -> None:
    body = {"Env": ["NOSANA_ID=j"], "HostConfig": {"ExtraHosts": ["host.docker.internal:8.8.8.8"]}}
    changed = docker_create(body, HUB)
    assert "HF_ENDPOINT=http://nosana-cache.internal:9811/hf" in changed["Env"]
    assert changed["HostConfig"]["ExtraHosts"][-1] == HUB.extra_host
    assert body["Env"] == ["NOSANA_ID=j"], "the node's own body is not changed in place"
    own = {"Env": ["HF_ENDPOINT=http://x"]}
    assert docker_create(own, HUB) is own


def test_libpod_create_gets_the_hub_and_writable_volumes_are_found() -> None:
    body = {"env": {"A": "1", "MODEL_ENDPOINT": "m"}, "volumes": [{"name": "v", "Options": []}]}
    changed = libpod_create(body, HUB)
    assert changed["env"]["HF_HUB_DISABLE_XET"] == "1"
    assert changed["env"]["MODEL_ENDPOINT"] == "m"
    assert changed["hostadd"] == [HUB.extra_host]
    assert writable_volumes(body, libpod=True) == ["v"]
    mounts = {"HostConfig": {"Mounts": [{"Type": "volume", "Source": "r", "ReadOnly": True}]}}
    assert writable_volumes(mounts, libpod=False) == []
