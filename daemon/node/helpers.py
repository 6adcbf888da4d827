"""The resource helper's container, answered by the daemon on the node's socket.

A helper create gets an id of the daemon's own (`ID_PREFIX` and hex: engine ids are hex only,
so none can collide), and every later call on that id is answered here as the engine would:
start, logs (multiplexed frames, or raw with a TTY; followed until exit; `tail`, `timestamps`),
wait, inspect, stop, kill, remove. The helper's image pull is answered too (the image is never
needed). Where the volume's mount point is not visible to the daemon (an engine in another
container, whose paths are its own), the create goes on to the engine and the real helper
runs, as without the cache; status says so.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import NosanaCacheError
from ..logs import get_logger
from .engine_calls import volume_mountpoint
from .helper_run import HelperRun, Worker
from .helper_spec import frame, helper_resource, helper_volume, timestamp
from .http1 import LAST_CHUNK, chunk, error_response, json_response
from .proxy import Exchange
from .record import NodeRequest, NodeRequests

log = get_logger(__name__)

ID_PREFIX = "nosanacachehelper"
KEPT_EXITED = 64
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
    b"Transfer-Encoding: chunked\r\nApi-Version: 1.41\r\n\r\n"
)


class Helpers:
    def __init__(self, engine: str, worker: Worker, requests: NodeRequests) -> None:
        self.engine = engine
        self.worker = worker
        self.requests = requests
        self.runs: dict[str, HelperRun] = {}

    def owns(self, ident: str) -> bool:
        return ident.startswith(ID_PREFIX) or any(r.name == ident for r in self.runs.values())

    def _find(self, ident: str) -> HelperRun | None:
        if ident in self.runs:
            return self.runs[ident]
        return next((r for r in self.runs.values() if r.name == ident), None)

    async def create(self, exchange: Exchange, body: dict[str, Any]) -> bool:
        """Answer the helper's create, or leave it to the engine (False)."""
        volume = helper_volume(body)
        if volume is None:
            return False
        mountpoint = await volume_mountpoint(self.engine, volume)
        if mountpoint is None or not await asyncio.to_thread(Path(mountpoint).is_dir):
            self._passed_on(body, volume, mountpoint)
            return False
        try:
            resource = helper_resource(body)
        except NosanaCacheError as exc:
            await exchange.send(error_response(400, "Bad Request", exc.message))
            return True
        ident = ID_PREFIX + secrets.token_hex(24)
        name = exchange.request.query.get("name") or ident[: len(ID_PREFIX) + 12]
        self.runs[ident] = HelperRun(
            ident, name, resource, volume, Path(mountpoint), body, self.worker.clock
        )
        self._forget_exited()
        await exchange.send(json_response(201, "Created", {"Id": ident, "Warnings": []}))
        return True

    def _passed_on(self, body: dict[str, Any], volume: str, mountpoint: str | None) -> None:
        log.warning("node.helper_passed_on", volume=volume, mountpoint=mountpoint)
        cmd = body.get("Cmd") or []
        self.requests.add(
            NodeRequest(
                at=self.worker.clock.now(),
                type=str(cmd[0]) if cmd else "?",
                source=" ".join(str(c) for c in cmd[1:2]),
                outcome="helper",
                bytes=0,
                files=0,
                seconds=0.0,
                saved_seconds=None,
                volume=volume,
                linked=False,
                error=f"the volume's mount point {mountpoint} is not visible to the daemon",
            )
        )

    def _forget_exited(self) -> None:
        exited = [r for r in self.runs.values() if r.exit_code is not None]
        for run in exited[:-KEPT_EXITED]:
            self.runs.pop(run.id, None)

    async def answer(self, exchange: Exchange, ident: str, action: str) -> bool:
        run = self._find(ident)
        if run is None:
            await exchange.send(error_response(404, "Not Found", f"No such container: {ident}"))
            return True
        method = exchange.request.method
        handler = _ACTIONS.get((method, action))
        if handler is None:
            message = f"nosana-cache serves the resource helper's {method} {action or '/'} not"
            await exchange.send(error_response(501, "Not Implemented", message))
            return True
        await handler(self, exchange, run)
        return True

    async def _start(self, exchange: Exchange, run: HelperRun) -> None:
        if run.started_at is not None:
            await exchange.send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n")
            return
        run.started_at = self.worker.clock.now()
        run.task = asyncio.create_task(self.worker.run(run, copy=False), name=f"helper:{run.id}")
        await exchange.send(b"HTTP/1.1 204 No Content\r\n\r\n")

    async def _wait(self, exchange: Exchange, run: HelperRun) -> None:
        async with run.changed:
            await run.changed.wait_for(lambda: run.exit_code is not None)
        await exchange.send(json_response(200, "OK", {"StatusCode": run.exit_code, "Error": None}))

    async def _logs(self, exchange: Exchange, run: HelperRun) -> None:
        query = exchange.request.query
        streams = {s for s, key in ((1, "stdout"), (2, "stderr")) if _true(query.get(key))}
        follow, stamps = _true(query.get("follow")), _true(query.get("timestamps"))
        tail = query.get("tail", "all")
        tty = bool(run.body.get("Tty"))
        await exchange.send(STREAM_HEAD)
        lines = [line for line in run.lines if line[0] in streams]
        sent = run.emitted
        if tail.isdigit():
            lines = lines[-int(tail) :] if int(tail) else []
        while True:
            for stream, at, line in lines:
                text = (timestamp(at) + " ").encode() * stamps + line + b"\n"
                await exchange.send(chunk(frame(stream, text, tty=tty)))
            if not follow:
                break
            async with run.changed:
                await run.changed.wait_for(_moved(run, sent))
                fresh = run.lines[len(run.lines) - min(run.emitted - sent, len(run.lines)) :]
                lines = [line for line in fresh if line[0] in streams]
                ended = run.exit_code is not None and run.emitted == sent
                sent = run.emitted
            if ended:
                break
        await exchange.send(LAST_CHUNK)

    async def _inspect(self, exchange: Exchange, run: HelperRun) -> None:
        await exchange.send(json_response(200, "OK", _inspection(run)))

    async def _stop(self, exchange: Exchange, run: HelperRun) -> None:
        if run.exit_code is not None or run.task is None:
            await exchange.send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n")
            return
        run.task.cancel()
        await asyncio.gather(run.task, return_exceptions=True)
        if run.exit_code is None:
            await run.exit(137)
        await exchange.send(b"HTTP/1.1 204 No Content\r\n\r\n")

    async def _remove(self, exchange: Exchange, run: HelperRun) -> None:
        if run.state == "running" and not _true(exchange.request.query.get("force")):
            message = f"cannot remove container {run.id}: the container is running"
            await exchange.send(error_response(409, "Conflict", message))
            return
        if run.task is not None and not run.task.done():
            run.task.cancel()
            await asyncio.gather(run.task, return_exceptions=True)
            if run.exit_code is None:
                await run.exit(137)
        self.runs.pop(run.id, None)
        await exchange.send(b"HTTP/1.1 204 No Content\r\n\r\n")

    async def close(self) -> None:
        tasks = [r.task for r in self.runs.values() if r.task is not None and not r.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_ACTIONS = {
    ("POST", "/start"): Helpers._start,
    ("POST", "/wait"): Helpers._wait,
    ("GET", "/logs"): Helpers._logs,
    ("GET", "/json"): Helpers._inspect,
    ("POST", "/stop"): Helpers._stop,
    ("POST", "/kill"): Helpers._stop,
    ("DELETE", ""): Helpers._remove,
}


def _moved(run: HelperRun, sent: int) -> Callable[[], bool]:
    return lambda: run.emitted > sent or run.exit_code is not None


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _iso(at: float | None) -> str:
    return timestamp(at) if at is not None else "0001-01-01T00:00:00Z"


def _inspection(run: HelperRun) -> dict[str, Any]:
    """The fields of `docker inspect` a client of the helper reads."""
    state = run.state
    body = run.body
    return {
        "Id": run.id,
        "Name": "/" + run.name,
        "Created": _iso(run.created_at),
        "Image": body.get("Image"),
        "State": {
            "Status": state,
            "Running": state == "running",
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": 0,
            "ExitCode": run.exit_code or 0,
            "Error": "",
            "StartedAt": _iso(run.started_at),
            "FinishedAt": _iso(run.finished_at),
        },
        "Config": {
            "Image": body.get("Image"),
            "Cmd": body.get("Cmd"),
            "Tty": bool(body.get("Tty")),
        },
        "HostConfig": body.get("HostConfig") or {},
        "Mounts": [
            {
                "Type": "volume",
                "Name": run.volume,
                "Source": str(run.mountpoint),
                "Destination": "/s3/temp",
                "RW": True,
            }
        ],
    }
