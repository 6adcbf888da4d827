"""Which of the node's requests the daemon answers or changes; everything else passes.

Looked at: `POST /containers/create` (a helper's is answered, a job container's gets the Hub
variables), libpod's `POST /v*/libpod/containers/create` (job containers on Podman), `POST
/images/create` of the helper's image (answered: the image is never run), and calls on a
helper id the daemon gave out, and other image pulls (`POST /images/create`: through the
registry endpoint where the daemon's own pulls would go, pulls.py). Paths may carry an API
version (`/v1.41/...`), as dockerode's do when it is given one.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from ..hub.listener import ContainerHub
from ..logs import get_logger
from .creates import docker_create, libpod_create, writable_volumes
from .fill import unlink_copies
from .helper_run import Worker
from .helper_spec import is_helper, is_helper_image
from .helpers import Helpers
from .http1 import LAST_CHUNK, chunk
from .proxy import Exchange
from .pulls import NodePulls

log = get_logger(__name__)

_V = r"(?:/v[0-9][0-9.]*)?"
CREATE = re.compile(rf"^{_V}/containers/create$")
LIBPOD_CREATE = re.compile(r"^/v[0-9][0-9.]*/libpod/containers/create$")
CONTAINER = re.compile(rf"^{_V}(?:/libpod)?/containers/(?P<id>[^/]+)(?P<action>/[a-z]+)?$")
IMAGE_CREATE = re.compile(rf"^{_V}/images/create$")

HubEndpoint = Callable[[], Awaitable[ContainerHub | None]]


class NodeRoutes:
    def __init__(
        self, helpers: Helpers, worker: Worker, hub: HubEndpoint | None, pulls: NodePulls | None
    ) -> None:
        self.helpers = helpers
        self.worker = worker
        self.hub = hub
        self.pulls = pulls

    async def __call__(self, exchange: Exchange) -> bool:
        request = exchange.request
        method, path = request.method, request.path
        if method == "POST" and CREATE.match(path):
            return await self._create(exchange, libpod=False)
        if method == "POST" and LIBPOD_CREATE.match(path):
            return await self._create(exchange, libpod=True)
        if method == "POST" and IMAGE_CREATE.match(path):
            if self._helper_pull(exchange):
                await _answer_pull(exchange)
                return True
            return self.pulls is not None and await self.pulls(exchange)
        match = CONTAINER.match(path)
        if match and self.helpers.owns(match["id"]):
            return await self.helpers.answer(exchange, match["id"], match["action"] or "")
        return False

    async def _create(self, exchange: Exchange, *, libpod: bool) -> bool:
        body = await exchange.json()
        if not isinstance(body, dict):
            return False
        if not libpod and is_helper(body):
            return await self.helpers.create(exchange, body)
        await self._writable_copies(body, libpod=libpod)
        changed = await self._with_hub(body, libpod=libpod)
        if changed is not body:
            await exchange.forward(json.dumps(changed).encode())
            return True
        return False

    async def _with_hub(self, body: dict[str, Any], *, libpod: bool) -> dict[str, Any]:
        if self.hub is None:
            return body
        hub = await self.hub()
        if hub is None:
            return body
        return libpod_create(body, hub) if libpod else docker_create(body, hub)

    async def _writable_copies(self, body: dict[str, Any], *, libpod: bool) -> None:
        """A volume the daemon filled with links, mounted writable (S3 `allowWrite`): its
        files become copies first, so the job cannot write into the store."""
        linked = self.worker.linked_volumes
        for name in writable_volumes(body, libpod=libpod):
            mountpoint = linked.pop(name, None)
            if mountpoint is not None:
                copied = await asyncio.to_thread(unlink_copies, mountpoint)
                log.info("node.volume_copied", volume=name, files=copied)

    def _helper_pull(self, exchange: Exchange) -> bool:
        query = exchange.request.query
        image = query.get("fromImage", "")
        tag = query.get("tag")
        return is_helper_image(
            f"{image}:{tag}" if tag and ":" not in image.rsplit("/", 1)[-1] else image
        )


async def _answer_pull(exchange: Exchange) -> None:
    """The pull's progress as the engine streams it, for an image the daemon stands in for."""
    query = exchange.request.query
    image = query.get("fromImage", "")
    tag = query.get("tag") or "latest"
    await exchange.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for status in (
        {"status": f"Pulling from {image.split('/', 1)[-1]}", "id": tag},
        {"status": f"Status: Image is up to date for {image}:{tag} (nosana-cache)"},
    ):
        await exchange.send(chunk(json.dumps(status).encode() + b"\r\n"))
    await exchange.send(LAST_CHUNK)
