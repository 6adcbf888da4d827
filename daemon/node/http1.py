"""Just enough HTTP/1.1 to forward an engine's API without changing a byte of it.

A message head is read whole (bounded by `MAX_HEAD`) and kept as received; only the request
line, the status line and the few headers that frame a body (`Content-Length`,
`Transfer-Encoding`, `Connection`, `Upgrade`) are looked at. Bodies are copied in pieces of at
most `PIECE` bytes with the writer drained after each, so a proxied image load or a followed
log never sits in memory; chunked bodies are copied with their framing, as they came.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 64 * 1024
"""The longest message head accepted (Docker's own limit is 1 MiB; dockerode's are small)."""
PIECE = 64 * 1024
MAX_JSON_BODY = 4 * 1024 * 1024
"""The largest request body read whole (a container create), when it is to be looked at."""

Framing = tuple[Literal["none", "length", "chunked", "close"], int]


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 as this proxy understands it."""


@dataclass
class Head:
    """A message head as received (`raw`, byte for byte) and its parsed parts."""

    raw: bytes
    first: list[str]
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def tokens(self, name: str) -> set[str]:
        value = self.get(name) or ""
        return {part.strip().lower() for part in value.split(",") if part.strip()}

    @property
    def keep_alive(self) -> bool:
        return "close" not in self.tokens("connection")


@dataclass
class Request(Head):
    @property
    def method(self) -> str:
        return self.first[0].upper()

    @property
    def target(self) -> str:
        return self.first[1]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        pairs = parse_qs(urlsplit(self.target).query, keep_blank_values=True)
        return {key: values[-1] for key, values in pairs.items()}

    def framing(self) -> Framing:
        if "chunked" in self.tokens("transfer-encoding"):
            return ("chunked", 0)
        return ("length", _length(self)) if self.get("content-length") else ("none", 0)


@dataclass
class Response(Head):
    @property
    def status(self) -> int:
        return int(self.first[1])

    def framing(self, method: str) -> Framing:
        if method == "HEAD" or self.status < 200 or self.status in (204, 304):
            return ("none", 0)
        if "chunked" in self.tokens("transfer-encoding"):
            return ("chunked", 0)
        if self.get("content-length") is not None:
            return ("length", _length(self))
        return ("close", 0)


def _length(head: Head) -> int:
    try:
        length = int(head.get("content-length") or "0")
    except ValueError:
        raise ProtocolError(f"bad Content-Length {head.get('content-length')!r}") from None
    if length < 0:
        raise ProtocolError("negative Content-Length")
    return length


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The next message head, `\\r\\n\\r\\n` included; None at a clean end of the stream."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise ProtocolError("the connection ended inside a message head") from None
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"a message head longer than {MAX_HEAD} bytes") from None


def _parse(raw: bytes) -> tuple[list[str], list[tuple[str, str]]]:
    lines = raw.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    if len(first) < 2 or not first[0]:
        raise ProtocolError(f"not an HTTP/1.1 start line: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"not a header line: {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    return first, headers


def parse_request(raw: bytes) -> Request:
    first, headers = _parse(raw)
    if len(first) != 3 or not first[2].startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x request line: {' '.join(first)[:80]!r}")
    return Request(raw, first, headers)


def parse_response(raw: bytes) -> Response:
    first, headers = _parse(raw)
    if not first[0].startswith("HTTP/1.") or not first[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {' '.join(first)[:80]!r}")
    return Response(raw, first, headers)


async def copy_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framing: Framing
) -> None:
    """Copy one body as framed, framing included, piece by piece."""
    kind, length = framing
    if kind == "length":
        await _copy_exactly(reader, writer, length)
    elif kind == "chunked":
        await _copy_chunked(reader, writer)
    elif kind == "close":
        while piece := await reader.read(PIECE):
            writer.write(piece)
            await writer.drain()


async def _copy_exactly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        piece = await reader.read(min(n, PIECE))
        if not piece:
            raise ProtocolError("the connection ended inside a body")
        writer.write(piece)
        await writer.drain()
        n -= len(piece)


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line = await _line(reader)
        writer.write(line)
        size = _chunk_size(line)
        if size == 0:
            while (trailer := await _line(reader)) != b"\r\n":
                writer.write(trailer)
            writer.write(b"\r\n")
            await writer.drain()
            return
        await _copy_exactly(reader, writer, size + 2)


async def read_body(
    reader: asyncio.StreamReader, framing: Framing, limit: int = MAX_JSON_BODY
) -> bytes:
    """A whole request body, de-chunked, of at most `limit` bytes."""
    kind, length = framing
    if kind == "length":
        if length > limit:
            raise ProtocolError(f"a body of {length} bytes, more than {limit}")
        return await reader.readexactly(length)
    if kind != "chunked":
        return b""
    parts: list[bytes] = []
    total = 0
    while size := _chunk_size(await _line(reader)):
        total += size
        if total > limit:
            raise ProtocolError(f"a body of more than {limit} bytes")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    while await _line(reader) != b"\r\n":
        pass
    return b"".join(parts)


async def body_pieces(reader: asyncio.StreamReader, framing: Framing) -> AsyncIterator[bytes]:
    """A body's pieces as they arrive, de-chunked (a pull's progress, read as it comes)."""
    kind, length = framing
    if kind == "chunked":
        while size := _chunk_size(await _line(reader)):
            while size > 0:
                piece = await reader.read(min(size, PIECE))
                if not piece:
                    raise ProtocolError("the connection ended inside a chunk")
                size -= len(piece)
                yield piece
            await reader.readexactly(2)
        while await _line(reader) != b"\r\n":
            pass
    elif kind == "length":
        while length > 0:
            piece = await reader.read(min(length, PIECE))
            if not piece:
                raise ProtocolError("the connection ended inside a body")
            length -= len(piece)
            yield piece
    elif kind == "close":
        while piece := await reader.read(PIECE):
            yield piece


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise ProtocolError("a chunked body ended or overran its framing") from None


def _chunk_size(line: bytes) -> int:
    try:
        return int(line.split(b";", 1)[0].strip(), 16)
    except ValueError:
        raise ProtocolError(f"bad chunk size line {line[:40]!r}") from None


def with_body(request: Request, body: bytes) -> bytes:
    """The request's head with `body` framed by a Content-Length in place of its own framing."""
    lines = [" ".join(request.first)]
    for name, value in request.headers:
        if name.lower() not in ("content-length", "transfer-encoding"):
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def response_bytes(
    status: int, reason: str, body: bytes, content_type: str = "application/json"
) -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Api-Version: 1.41\r\n\r\n"
    )
    return head.encode("latin-1") + body


def json_response(status: int, reason: str, value: Any) -> bytes:
    return response_bytes(status, reason, json.dumps(value).encode())


def error_response(status: int, reason: str, message: str) -> bytes:
    """An engine's error as Docker and Podman give it: `{"message": ...}`."""
    return json_response(status, reason, {"message": message})


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""


LAST_CHUNK = b"0\r\n\r\n"
