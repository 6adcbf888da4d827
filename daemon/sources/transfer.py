"""One downloader for every HTTP-based source: parallel ranged parts, resume, bounded memory.

    download(url, sink)
      ├─ the first missing part is requested alone (following redirects by hand, dropping
      │  credentials when the host changes; the target is kept for the other parts, and
      │  asked of the origin again once it has expired: redirects.py): a 206 means the
      │  server honours Range, and the remaining parts go in parallel as soon as it comes
      │  (not after the first part's bytes: on a WAN that would be one capped stream for a
      │  whole part); a 200 means it does not, and that one stream is written whole
      ├─ each part writes what it receives as it arrives; a dropped or stalled connection is
      │  retried with backoff from the first byte not yet received, never from zero
      └─ when a part ends and its slot is free, no part waiting for it, the part in flight
         with the most bytes left (of any download) gives half of them to a new part, so the
         tail of a download keeps its connections (parts.py)

Every transfer holds one of `download.concurrency` slots while its connection is open, so
the total parallelism is bounded whatever mix of large and small files is running; a freed
slot goes to the download holding fewest (slots.py), so a manifest or a small layer asked for
during a large file's download waits for one part, not for the whole file. Memory per
transfer is a few buffers (`MEMORY_PER_CONNECTION`, under 2 MiB), never a whole file.

Job-provided URLs go through a session whose resolver refuses private addresses
(netguard.py); endpoints from the operator's config use a plain one. aiohttp exceptions do not
leave this module: they become `UpstreamUnavailable` (after retries) or another
`UpstreamError` naming the URL.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from yarl import URL

from .. import __version__
from ..errors import UpstreamAuthError, UpstreamError, UpstreamTooLarge, UpstreamUnavailable
from ..logs import get_logger
from ..settings import DownloadSettings
from ..store import BlobSink
from ..util.aiotasks import AllOrNothing
from ..util.clock import Clock
from ..util.limits import ERROR_BYTES, METADATA_BYTES, Bound
from ..util.retry import RetryPolicy, retrying
from .http_errors import describe, status_error, unavailable
from .netguard import GuardedResolver
from .parts import Cursor, Start, Tail, cut
from .redirects import Authorizer, Redirects, Signer, Target
from .slots import Slots

log = get_logger(__name__)

WRITE_BUFFER = 512 * 1024
READ_BUFFER = 256 * 1024
"""aiohttp stops reading a socket at twice this buffered (its default, 64 KiB, is too little
for GB files; the kernel's socket buffer holds what comes meanwhile). At 1 MiB, 32 connections
held 150 MiB more at their peak for a 1 GiB file than at 256 KiB, and were no faster on
loopback (3.4 to 4.6 s against 3.0 to 3.2 s, 3 interleaved runs)."""
MEMORY_PER_CONNECTION = 3 * READ_BUFFER + 2 * WRITE_BUFFER
"""The most one connection holds by design: aiohttp's buffer (twice READ_BUFFER, and the
reads under way when it pauses the socket), what the part has taken for its next write, and
that write's joined copy. The daemon's memory for downloads is this times
`download.concurrency` (tests/integration/test_pull.py holds it to that)."""
_TEMPORARY = (UpstreamUnavailable, aiohttp.ClientError, TimeoutError)
"""What a retry may cure: a temporary answer, a dropped or refused connection, a timeout."""
T = TypeVar("T")


@dataclass
class Response:
    """A whole (small) response body: manifests, listings."""

    status: int
    url: URL
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class TransferStats:
    """Totals since start, for /metrics."""

    bytes_received: int
    active: int


class Transfer:
    def __init__(self, settings: DownloadSettings, *, allow_private: bool, clock: Clock) -> None:
        self.settings = settings
        self.allow_private = allow_private
        self._clock = clock
        self._policy = RetryPolicy(settings.max_retries)
        self._slots = Slots(settings.concurrency)
        self._tail = Tail()
        self._redirects = Redirects(allow_private=allow_private)
        self._trusted: aiohttp.ClientSession | None = None
        self._guarded: aiohttp.ClientSession | None = None
        self.bytes_received = 0
        self.active = 0

    def stats(self) -> TransferStats:
        return TransferStats(self.bytes_received, self.active)

    async def start(self) -> None:
        self._trusted = self._session(guarded=False)
        self._guarded = self._session(guarded=True)

    def _session(self, *, guarded: bool) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.settings.connect_timeout,
            sock_connect=self.settings.connect_timeout,
            sock_read=self.settings.stall_timeout,
        )
        connector = aiohttp.TCPConnector(
            limit=self.settings.concurrency * 2 + 8,
            ttl_dns_cache=300,
            resolver=GuardedResolver() if guarded and not self.allow_private else None,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            read_bufsize=READ_BUFFER,
            headers={"User-Agent": f"nosana-cache/{__version__}", "Accept-Encoding": "identity"},
        )

    async def close(self) -> None:
        for session in (self._trusted, self._guarded):
            if session is not None:
                await session.close()

    # -- small responses ------------------------------------------------------------------

    async def get(
        self,
        url: str | URL,
        *,
        name: str,
        trusted: bool,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        ok: tuple[int, ...] = (200,),
        sign: Signer | None = None,
        follow: bool = True,
        limit: Bound = METADATA_BYTES,
        auth: Authorizer | None = None,
        slot: bool = True,
    ) -> Response:
        """A whole small response, retried on temporary failures; `ok` statuses return,
        others raise the matching `UpstreamError`. With `follow=False` a redirect is the
        answer (the Hub says what it thinks of a request in the redirect itself). A body
        past `limit` is `UpstreamTooLarge`, from its `Content-Length` before it is read.
        `auth`: credentials renewed after a 401 (redirects.py). `slot=False`: the request
        takes no download slot, for one made on behalf of a request that holds one (a token
        renewal), which would otherwise wait for itself when every slot is held so."""
        target = Target(_url(url), dict(headers or {}), trusted, name, 0, sign, auth)

        def held() -> contextlib.AbstractAsyncContextManager[object]:
            return self._slots.held(target) if slot else contextlib.nullcontext()

        async def once() -> Response:
            async with held():
                response = await self._open(target, {}, method, follow)
                async with response:
                    # A HEAD's Content-Length is the GET's: there is no body to bound.
                    body = b"" if method == "HEAD" else await _read_limited(response, limit, name)
                    if response.status in ok:
                        return Response(response.status, response.url, response.headers, body)
                    raise _refused(target, response, body)

        return await self._retrying(once, target)

    # -- file bodies ------------------------------------------------------------------------

    async def download(
        self,
        url: str | URL,
        sink: BlobSink,
        *,
        name: str,
        trusted: bool,
        headers: Mapping[str, str] | None = None,
        sign: Signer | None = None,
        auth: Authorizer | None = None,
    ) -> None:
        """Write every missing byte range of `sink` from `url`; `auth`: credentials renewed
        after a 401 (redirects.py)."""
        missing = sink.missing()
        if not missing:
            return
        target = Target(_url(url), dict(headers or {}), trusted, name, sink.size, sign, auth)
        first, *rest = cut(missing, self.settings.part_size)
        async with AllOrNothing() as parts:  # a split adds a part while the others run

            def start(cursor: Cursor) -> bool:
                return parts.spawn(self._part(target, sink, cursor, start))

            start(Cursor(*first))
            await target.answered.wait()
            if target.ranges is False:
                return  # the server ignored Range: the first part is the whole file
            for part in rest:
                start(Cursor(*part))

    async def _part(self, target: Target, sink: BlobSink, cursor: Cursor, start: Start) -> None:
        """Fetch the cursor's bytes into the sink, resuming after drops from the first byte
        not yet received; then, if its slot is free with no part waiting for it, split the
        part in flight with the most bytes left (parts.py)."""
        try:
            await self._retrying_part(target, sink, cursor, start)
        finally:
            target.answered.set()  # whatever happened, no part waits for this one's answer
        if not self._slots.locked():
            self._tail.split()

    async def _retrying_part(
        self, target: Target, sink: BlobSink, cursor: Cursor, start: Start
    ) -> None:
        async def once() -> None:
            if cursor.offset >= cursor.end:
                return  # a drop after the last byte (a Content-Length that promised more)
            async with self._slots.held(target):
                self.active += 1
                try:
                    await self._stream(target, sink, cursor, start)
                finally:
                    self.active -= 1

        def on_retry(exc: BaseException, retry: int) -> None:
            log.info(
                "transfer.retry",
                file=target.name,
                offset=cursor.offset,
                attempt=retry,
                error=describe(exc),
            )

        await self._retrying(once, target, on_retry)

    async def _retrying(
        self,
        operation: Callable[[], Awaitable[T]],
        target: Target,
        on_retry: Callable[[BaseException, int], None] | None = None,
    ) -> T:
        """`operation` retried on drops, timeouts and temporary answers (each attempt of a
        part resumes where the last one stopped); in the end, an error naming the URL."""
        return await retrying(
            operation,
            self._policy,
            self._clock,
            retry_if=lambda exc: isinstance(exc, _TEMPORARY),
            on_retry=on_retry,
            give_up=lambda exc, attempts: unavailable(exc, target.name, target.url, attempts),
        )

    async def _stream(self, target: Target, sink: BlobSink, cursor: Cursor, start: Start) -> None:
        """One request, moving `cursor` along as bytes are written; a drop leaves it at the
        first byte not received. While the body streams (from a server that honours Range)
        the part may be split."""
        whole = target.ranges is False
        if whole:
            cursor.offset, cursor.end = 0, target.size
        cursor.taken = cursor.offset
        range_header = {} if whole else {"Range": f"bytes={cursor.offset}-{cursor.end - 1}"}
        response = await self._open(target, range_header)
        async with response:
            if response.status == 206:
                target.ranges = True
                target.answered.set()
                first = _content_range_start(response.headers.get("Content-Range"))
                if first != cursor.offset:
                    raise UpstreamError(
                        f"{target.name}: asked for byte {cursor.offset}, got {first}"
                    )
                with self._tail.streaming(cursor, target.name, start):
                    await self._receive(response, sink, cursor, target.name)
            elif response.status == 200:
                target.ranges = False
                target.answered.set()
                cursor.offset = cursor.taken = 0
                cursor.end = target.size
                await self._receive(response, sink, cursor, target.name)
            else:
                body = await _read_limited(response, ERROR_BYTES, target.name)
                raise _refused(target, response, body)
        if cursor.offset < cursor.end:
            raise UpstreamUnavailable(
                f"{target.name}: connection closed at byte {cursor.offset} of {cursor.end}"
            )

    async def _receive(
        self, response: aiohttp.ClientResponse, sink: BlobSink, cursor: Cursor, name: str
    ) -> None:
        """Write the body from `cursor.offset` up to `cursor.end` as it stands at each chunk:
        a split moves it down, and the rest of the body is left unread (the connection
        closes). At most `WRITE_BUFFER` bytes are held between writes."""
        pending: list[bytes] = []
        speed = _SpeedCheck(self.settings.min_speed, self.settings.stall_timeout, name, self._clock)
        try:
            async for chunk in response.content.iter_any():
                speed.received(len(chunk))
                take = chunk[: max(0, cursor.end - cursor.taken)]
                if take:
                    pending.append(take)
                    cursor.taken += len(take)
                    self.bytes_received += len(take)
                if cursor.taken - cursor.offset >= WRITE_BUFFER:
                    data, pending = b"".join(pending), []
                    await sink.write(cursor.offset, data)
                    cursor.offset += len(data)
                if cursor.taken >= cursor.end:
                    break
        finally:
            if pending:  # keep what arrived before a drop: the retry resumes after it
                data = b"".join(pending)
                await sink.write(cursor.offset, data)
                cursor.offset += len(data)

    async def _open(
        self, target: Target, extra: Mapping[str, str], method: str = "GET", follow: bool = True
    ) -> aiohttp.ClientResponse:
        session = self._trusted if target.trusted else self._guarded
        assert session is not None, "Transfer.start() was not called"
        return await self._redirects.open(session, target, extra, method, follow)


def _refused(target: Target, response: aiohttp.ClientResponse, body: bytes) -> Exception:
    """The error for an answer that is not a success; a redirect target's refusal says
    where the redirect came from (it came fresh: redirects.py renews an expired one)."""
    error = status_error(response.status, response.headers, body, target.name, target.url)
    if target.redirected and isinstance(error, UpstreamAuthError):
        origin = target.origin.with_query(None)
        return UpstreamAuthError(f"{error.message}, right after a fresh redirect from {origin}")
    return error


def _url(url: str | URL) -> URL:
    """Strings are taken as already encoded: a signed URL must go out byte for byte."""
    return url if isinstance(url, URL) else URL(url, encoded=True)


def _content_range_start(header: str | None) -> int | None:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", header or "")
    return int(match.group(1)) if match else None


class _SpeedCheck:
    """Drops a connection that trickles: bytes keep coming (so no read times out) but fewer
    than `min_speed` a second over a whole window. The retry resumes where it stopped, often
    on a better connection; a host that is slow every time ends in a clear error."""

    def __init__(self, min_speed: int, window: float, name: str, clock: Clock) -> None:
        self.clock = clock
        self.min_bytes = min_speed * window
        self.window = window
        self.name = name
        self.started = clock.monotonic()
        self.count = 0

    def received(self, count: int) -> None:
        self.count += count
        elapsed = self.clock.monotonic() - self.started
        if elapsed < self.window:
            return
        if self.count < self.min_bytes * elapsed / self.window:
            raise UpstreamUnavailable(
                f"{self.name}: upstream sent {self.count} bytes in {elapsed:.0f} s, slower than "
                f"download.min_speed ({self.min_bytes / self.window:.0f} bytes/s)"
            )
        self.started, self.count = self.clock.monotonic(), 0


async def _read_limited(response: aiohttp.ClientResponse, limit: Bound, name: str) -> bytes:
    """The whole body, refused past `limit`. Pieces are joined once at the end (a bytearray
    grown and copied out would move a site store's 8 MiB chunks twice)."""
    too_large = limit.over(response.content_length or 0, f"{name}: the answer")
    if too_large:
        raise UpstreamTooLarge(too_large)
    pieces: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        pieces.append(chunk)
        size += len(chunk)
        too_large = limit.over(size, f"{name}: the answer")
        if too_large:
            raise UpstreamTooLarge(too_large)
    return b"".join(pieces)
