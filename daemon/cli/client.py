"""A small synchronous client of the daemon's API, for the CLI.

Synchronous and stdlib-only (http.client) so that `nosana-cache status` starts fast; it speaks
TCP or a unix socket. Failures are two types the CLI maps to exit codes: the daemon cannot be
reached (3), or it answered with a problem (1).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit


class DaemonUnreachable(Exception):
    """Nothing answers at the API address (exit code 3)."""


class ApiError(Exception):
    """The daemon answered with an error; `problem` is its problem+json body."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        lines = [str(detail)]
        lines += [f"  {e.get('loc')}: {e.get('msg')}" for e in problem.get("errors") or []]
        super().__init__("\n".join(lines))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Client:
    def __init__(self, base: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.base = base
        self.token = token
        self.timeout = timeout

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        timeout = self.timeout if timeout is None else timeout
        if self.base.startswith("unix:"):
            return _UnixConnection(self.base.removeprefix("unix:"), timeout)
        parts = urlsplit(self.base)
        if parts.scheme != "http" or not parts.hostname:
            raise DaemonUnreachable(f"{self.base}: the API address must be http://HOST:PORT")
        return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> http.client.HTTPResponse:
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        target = path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connection = self._connection(timeout)
        try:
            connection.request(method, target, body=payload, headers=headers)
            response = connection.getresponse()
        except OSError as exc:  # refused, no such socket, timed out, unknown host
            connection.close()
            raise DaemonUnreachable(f"no daemon answers at {self.base}: {exc}") from exc
        if response.status >= 400:
            raw = response.read()
            connection.close()
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"detail": raw.decode(errors="replace") or response.reason}
            raise ApiError(response.status, problem)
        return response

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON body (None when there is none)."""
        response = self._send(method, path, body, params, timeout)
        raw = response.read()
        response.close()
        return json.loads(raw) if raw else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def stream_lines(self, path: str, **params: Any) -> Iterator[bytes]:
        """Lines of a streamed response (logs with follow), until the daemon ends it."""
        response = self._send("GET", path, params=params, timeout=3600 * 24)
        try:
            while line := response.readline():
                yield line
        finally:
            response.close()


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
