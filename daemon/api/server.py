"""Serving the app on every `api.listen` address: TCP ports and unix sockets.

An async context manager owned by the composition root: entering binds every listener (a
port in use is a clear error, not a traceback); leaving stops accepting first and gives
in-flight requests a short grace before they are cut.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from ..errors import NosanaCacheError
from ..logs import get_logger
from ..settings import Listener

log = get_logger(__name__)

SHUTDOWN_GRACE = 5.0


class ListenError(NosanaCacheError):
    title = "Cannot listen"


@contextlib.asynccontextmanager
async def serve(app: web.Application, listeners: list[Listener]) -> AsyncIterator[list[str]]:
    """Bind every listener and yield the addresses actually bound (port 0 resolved)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    bound: list[str] = []
    try:
        for listener in listeners:
            bound.append(await _bind(runner, listener))
        log.info("api.listening", addresses=bound)
        yield bound
    finally:
        await runner.cleanup()
        for listener in listeners:
            if listener.unix_path:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(listener.unix_path)


async def _bind(runner: web.AppRunner, listener: Listener) -> str:
    try:
        if listener.unix_path is not None:
            _clear_stale_socket(Path(listener.unix_path))
            Path(listener.unix_path).parent.mkdir(parents=True, exist_ok=True)
            site: web.BaseSite = web.UnixSite(runner, listener.unix_path)
            await site.start()
            os.chmod(listener.unix_path, 0o660)
            return f"unix:{listener.unix_path}"
        site = web.TCPSite(runner, listener.host, listener.port, reuse_address=True)
        await site.start()
    except OSError as exc:
        raise ListenError(f"cannot listen on {listener}: {exc.strerror or exc}") from exc
    server = site._server  # aiohttp keeps the asyncio server here; we need the bound port
    sockets = getattr(server, "sockets", None) or []
    port = sockets[0].getsockname()[1] if sockets else listener.port
    host = f"[{listener.host}]" if listener.host and ":" in listener.host else listener.host
    return f"{host}:{port}"


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket file left by a killed daemon; refuse if another one still answers."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ListenError(f"cannot listen on unix:{path}: a file that is not a socket is there")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody answers: a leftover
    else:
        raise ListenError(f"cannot listen on unix:{path}: another daemon is serving there")
    finally:
        probe.close()
