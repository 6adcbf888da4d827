"""Serving bytes the way real content hosts do, and the ways they fail.

Every fake that serves file bodies (HF content host, S3-like streaming server, market) goes
through `send_content`, which honours `Range` (206 + Content-Range) and can be told to answer
500 a few times, drop the connection mid-body, stall, ignore Range, or send wrong bytes.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from .content import Content, parse_range

HOLD_LIMIT = 120.0
"""Longest a held body waits for its test (a test that forgets to release still ends)."""


@dataclass
class Faults:
    """What to do wrong for one file; counters go down as faults are used up."""

    fail_times: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    drop_after: int | None = None
    drop_times: int = 0
    stall_after: int | None = None
    stall_seconds: float = 0.0
    stall_times: int = 0
    ignore_range: bool = False
    corrupt: bool = False
    trickle_bytes_per_s: int | None = None
    trickle_times: int = 0
    overstate_length_times: int = 0
    hold_after: int | None = None
    hold: threading.Event | None = None
    """Send `hold_after` bytes, then nothing more until the test sets `hold`: an upstream
    the test holds still while it does something in between (no timing involved)."""
    held: threading.Event = field(default_factory=threading.Event)
    """Set once the body is held, so the test knows the upstream has got there."""
    hold_answer: bool = False
    """Hold the answer before its status and headers until `hold` is set (FaultyProxy only)."""
    drop_at_release: bool = False
    """Once `hold` is set, drop the held connection instead of sending the rest (once)."""


@dataclass
class Traffic:
    """What a fake was asked, for tests that count upstream requests and bytes."""

    requests: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0
    ranges: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)
    authorizations: list[str] = field(default_factory=list)

    def count(self, key: str) -> int:
        return self.requests[key]

    def total(self, prefix: str = "") -> int:
        return sum(n for key, n in self.requests.items() if key.startswith(prefix))


async def send_content(
    request: web.Request,
    content: Content,
    faults: Faults | None,
    traffic: Traffic,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    faults = faults or Faults()
    headers = dict(headers or {})
    if faults.fail_times > 0:
        faults.fail_times -= 1
        extra = {"Retry-After": faults.retry_after} if faults.retry_after is not None else {}
        return web.Response(status=faults.fail_status, text="injected failure", headers=extra)
    wanted = (
        None if faults.ignore_range else parse_range(request.headers.get("Range"), content.size)
    )
    if request.headers.get("Range") and not faults.ignore_range and wanted is None:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{content.size}"})
    start, end = wanted or (0, content.size)
    if request.headers.get("Range"):
        traffic.ranges.append((request.path, request.headers["Range"]))
    response = web.StreamResponse(status=206 if wanted else 200, headers=headers)
    response.headers["Accept-Ranges"] = "none" if faults.ignore_range else "bytes"
    response.content_length = end - start
    overstating = faults.overstate_length_times > 0 and request.method != "HEAD"
    if overstating:
        faults.overstate_length_times -= 1
        response.content_length = end - start + 4096  # promises bytes that never come
    trickle = faults.trickle_bytes_per_s if faults.trickle_times > 0 else None
    if trickle and request.method != "HEAD":
        faults.trickle_times -= 1
    if wanted:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{content.size}"
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    sent = 0
    for chunk in content.chunks(start, end):
        if faults.corrupt and sent <= (end - start) // 2 < sent + len(chunk):
            middle = (end - start) // 2 - sent
            chunk = chunk[:middle] + bytes([chunk[middle] ^ 0xFF]) + chunk[middle + 1 :]
        dropping = faults.drop_after is not None and faults.drop_times > 0
        if dropping and faults.drop_after is not None and sent + len(chunk) > faults.drop_after:
            faults.drop_times -= 1
            await response.write(chunk[: max(0, faults.drop_after - sent)])
            traffic.body_bytes += max(0, faults.drop_after - sent)
            assert request.transport is not None
            request.transport.abort()
            return response
        if faults.hold is not None and faults.hold_after is not None:
            chunk, sent = await hold_back(
                response, chunk, sent, faults.hold_after, faults.hold, traffic, faults.held
            )
            if faults.drop_at_release and sent >= faults.hold_after:
                faults.drop_at_release = False
                assert request.transport is not None
                request.transport.abort()
                return response
        stalling = faults.stall_after is not None and faults.stall_times > 0
        if stalling and faults.stall_after is not None and sent + len(chunk) > faults.stall_after:
            faults.stall_times -= 1
            await asyncio.sleep(faults.stall_seconds)
        try:
            if trickle:
                await trickle_out(response, chunk, trickle)
            else:
                await response.write(chunk)
        except ConnectionResetError:
            return response  # the client went away (a killed daemon): nothing to report
        sent += len(chunk)
        traffic.body_bytes += len(chunk)
    if overstating:
        assert request.transport is not None
        request.transport.abort()
        return response
    await response.write_eof()
    return response


async def hold_back(
    response: web.StreamResponse,
    chunk: bytes,
    sent: int,
    hold_after: int,
    hold: threading.Event,
    traffic: Traffic,
    held: threading.Event | None = None,
) -> tuple[bytes, int]:
    """Send up to exactly `hold_after` bytes, then wait for `hold` (setting `held`); what of
    `chunk` is left, and the bytes sent so far."""
    if hold.is_set():
        return chunk, sent
    cut = hold_after - sent
    if 0 < cut < len(chunk):
        await response.write(chunk[:cut])
        sent, chunk = sent + cut, chunk[cut:]
        traffic.body_bytes += cut
    if sent >= hold_after:
        if held is not None:
            held.set()
        await asyncio.to_thread(hold.wait, HOLD_LIMIT)
    return chunk, sent


async def trickle_out(response: web.StreamResponse, chunk: bytes, rate: int) -> None:
    """Send `chunk` at `rate` bytes a second, a little at a time (never a full stall)."""
    step = max(1, rate // 10)
    for at in range(0, len(chunk), step):
        await response.write(chunk[at : at + step])
        await asyncio.sleep(0.1)
