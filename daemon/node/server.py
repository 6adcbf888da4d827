"""The unix socket the node is given (`node.socket`), served while the daemon runs.

At start a file left at the path by a daemon that died is replaced (a live server there is
not: two daemons would take each other's node); the socket is made 0660, the way Docker's
own is, for the node running as root. At shutdown it stops accepting, closes every
connection (a node's followed log ends, as it would when an engine stops) and removes the
file: the node's next call then fails as on a dead engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from pathlib import Path

from ..errors import ConfigError
from ..logs import get_logger
from .http1 import MAX_HEAD
from .proxy import Connection, Intercept

log = get_logger(__name__)

SOCKET_MODE = 0o660


class NodeSocket:
    def __init__(self, path: str, engine: str, intercept: Intercept) -> None:
        self.path = Path(path)
        self.engine = engine.removeprefix("unix://")
        self.intercept = intercept
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[Connection] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await asyncio.to_thread(_clear_stale, self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_unix_server(
            self._handle, path=str(self.path), limit=MAX_HEAD
        )
        os.chmod(self.path, SOCKET_MODE)
        log.info("node.listening", socket=str(self.path), engine=self.engine)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(reader, writer, self.engine, self.intercept)
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(connection)
        self._handlers.add(task)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            self._handlers.discard(task)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = None
        log.info("node.closed", socket=str(self.path))


def _clear_stale(path: Path) -> None:
    """Remove a socket nobody serves any more; refuse to touch anything else."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError("node.socket", f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise ConfigError("node.socket", f"{path} is served by another process already")
