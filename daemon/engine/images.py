"""Docker images as store entries: pulled when first needed, evicted by the same rules.

An image entry's content lives in the engine, not in the store: its version is the image id
and its size the engine's. It is pulled through the registry endpoint (`registry.mirror`),
else through `docker.registry_mirrors` when the image's registry has a mirror (pull_routes.py
says which): pulled by the route's name, tagged as the original, the route's tag removed, with
the op's `authentication.docker` when given (to the endpoint, which passes it upstream). On
Podman the endpoint's names are pulled with libpod's pull, which can skip TLS for the endpoint
alone (libpod.py): the operator's registries.conf need not list it. A pull
with credentials never goes through a mirror unless `site.share_private`: a site's
pull-through registry pulls with its own credentials, keeps what it pulled and serves it to
every node, so a private image through it would be shared with whoever asks. An image
that was already in the engine when first asked for is recorded as not ours: evicting its
entry never removes it.
Only images this daemon pulled are ever removed, and private (authenticated) ones are removed
as soon as their op ends, as Nosana's node does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import docker.errors
import docker.utils
import requests.exceptions
from yarl import URL

from ..errors import EngineUnavailable, ImageError, UpstreamAuthError
from ..logs import get_logger
from ..settings import DockerSettings
from ..sources.identity import canonical
from ..sources.netguard import check_host
from ..store import (
    BlobSink,
    Entry,
    EntryDetails,
    EntryRequest,
    Fetch,
    FileSpec,
    Lease,
    Lookup,
    Manifest,
    Store,
)
from ..util.clock import Clock
from ..util.retry import RetryPolicy, retrying
from . import libpod
from .client import Engine
from .pull_routes import UNREACHABLE_HINT, Credentials, ImageRef, PullRoutes, Route, because

__all__ = ["Credentials", "ImageRef", "Images", "KnownImage"]

log = get_logger(__name__)

ENGINE_COMEBACK = 60.0
"""How long an image's pull waits for an engine that went away under it to come back."""
ENGINE_POLL = 1.0
PULL_RETRY = RetryPolicy(retries=3, first_delay=1.0, jitter=False)
"""A broken pull is tried again after 1, 2 and 4 s (and once the engine answers)."""
T = TypeVar("T")


@dataclass(frozen=True)
class KnownImage:
    """What a dry run learns of an image: its identity, its entry, and whether the engine has
    it (None when the engine does not answer)."""

    request: EntryRequest
    lookup: Lookup
    in_engine: bool | None


class Images:
    def __init__(
        self,
        engine: Engine,
        store: Store,
        settings: DockerSettings,
        *,
        clock: Clock,
        allow_private: bool = False,
        mirror_private: bool = False,
        endpoint: Callable[[], str | None] = lambda: None,
        explain: Callable[[str], str | None] = lambda _name: None,
    ) -> None:
        """`endpoint`: `HOST:PORT` of the registry endpoint while it listens, else None;
        `explain`: what the endpoint last refused for a name (a failed pull's cause)."""
        self.engine = engine
        self.store = store
        self.settings = settings
        self.clock = clock
        self.allow_private = allow_private
        self.routes = PullRoutes(settings, endpoint, mirror_private=mirror_private)
        self.explain = explain
        store.on_evict("image", self._remove_if_ours)

    def request(self, ref: str, credentials: Credentials | None) -> Fetch[_Pull]:
        image = ImageRef.parse(ref)
        identity = {
            "type": "image",
            "ref": image.canonical(),
            "credential": credentials.username if credentials and credentials.username else None,
        }
        request = EntryRequest(
            key=canonical(identity), type="image", source=f"docker://{image.canonical()}"
        )
        return Fetch(request, _Pull(self, image, credentials))

    async def acquire(
        self, ref: str, credentials: Credentials | None, holder: str, *, trusted: bool = False
    ) -> Lease:
        """A lease on the image's entry; pulled if the engine does not have it. A job's image
        (`trusted` False: not the market's) may not come from a private address."""
        fetch = self.request(ref, credentials)
        request, pull = fetch.request, fetch.resolver
        if not trusted:
            await self._check_registry(pull.image, credentials)
        lease = await self.store.acquire(request, pull, holder)
        if await self._present(pull.image.local_name):
            return lease
        # The entry outlived its image (someone ran `docker rmi`): start again, or, when
        # other ops hold the entry and it cannot go, pull the image back in under it.
        log.info("image.vanished", image=pull.image.original)
        await self.store.release(lease)
        if await self.store.evict(lease.entry, "gone"):
            return await self.store.acquire(request, pull, holder)
        lease = await self.store.acquire(request, pull, holder)
        try:
            await pull.restore()
        except BaseException:
            await self.store.release(lease)
            raise
        return lease

    async def look_up(self, ref: str, credentials: Credentials | None) -> KnownImage:
        """What the store and the engine know of the image now, pulling nothing."""
        fetch = self.request(ref, credentials)
        lookup = await self.store.look_up(fetch.request)
        try:
            present: bool | None = await self._present(fetch.resolver.image.local_name)
        except EngineUnavailable:
            present = None
        return KnownImage(fetch.request, lookup, present)

    async def _check_registry(self, image: ImageRef, credentials: Credentials | None) -> None:
        """The engine pulls from the image's registry (and logs in to the credentials'
        server): a job must not point it at this host or the operator's networks, whose
        registries would hand over their images and whose hosts and ports the pull's errors
        would probe. A registry the operator mirrors is pulled through the mirror (trusted)."""
        places = [] if self.routes.mirror_for(image, credentials) else [image.registry]
        server = credentials.server if credentials else None
        # The login server first: a private one is refused before the registry's name is
        # looked up at all.
        for place in [*([server] if server else []), *places]:
            host = _host_of(place)
            what = f"image {image.original}" if place == image.registry else f"login to {place}"
            await check_host(host, what=what, allow_private=self.allow_private)

    async def remove(self, entry: Entry) -> None:
        """Remove now, if nothing else holds it: private images do not outlive their op."""
        await self.store.evict(entry, "private")

    async def _present(self, name: str) -> bool:
        client = await self.engine.client()
        try:
            await self.engine.call(client.api.inspect_image, name)
        except docker.errors.ImageNotFound:
            return False
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"Docker engine: {exc}") from exc
        return True

    async def _remove_if_ours(self, entry: Entry) -> None:
        if not entry.details.get("pulled_by_daemon"):
            return
        name = str(entry.details.get("name"))
        client = await self.engine.client()
        try:
            await self.engine.call(client.api.remove_image, name)
            log.info("image.removed", image=name)
        except docker.errors.ImageNotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # still used by a container: try at the next sweep
                raise ImageError(f"{name} is in use by a container; kept for now") from exc
            raise ImageError(f"cannot remove {name}: {exc.explanation}") from exc


class _Pull:
    """The store's resolver for an image: `resolve` pulls (or finds) it, nothing to fetch."""

    def __init__(self, images: Images, image: ImageRef, credentials: Credentials | None) -> None:
        self.images = images
        self.image = image
        self.credentials = credentials

    async def close(self) -> None:
        return None

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        raise AssertionError("image entries have no files")

    async def resolve(self) -> Manifest:
        return await self._through_restarts(self._resolve_once)

    async def _resolve_once(self) -> Manifest:
        engine = self.images.engine
        client = await engine.client()
        name = self.image.local_name
        pulled = False
        try:
            info = await engine.call(client.api.inspect_image, name)
        except docker.errors.ImageNotFound:
            await self._pull(client)
            info = await engine.call(client.api.inspect_image, name)
            pulled = True
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"Docker engine: {exc}") from exc
        details: EntryDetails = {
            "name": name,
            "image_id": info["Id"],
            "pulled_by_daemon": pulled,
            "layers": len((info.get("RootFS") or {}).get("Layers") or []),
        }
        return Manifest(
            version=info["Id"], files=(), details=details, external_size=int(info.get("Size", 0))
        )

    async def restore(self) -> None:
        """Pull the image again if the engine lost it (its entry is kept)."""

        async def once() -> None:
            if not await self.images._present(self.image.local_name):
                await self._pull(await self.images.engine.client())

        await self._through_restarts(once)

    async def _through_restarts(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` again when a pull broke part way or the engine went away under it:
        an engine restarted for an upgrade, or a registry's hiccup, should delay a job's start
        by seconds, not fail it. A stopping engine reports the pulls it cancels as failed
        while it still answers, so the two cannot be told apart: both are retried, after a
        pause, once the engine answers again. What the engine refused outright (no such
        image, no access) is not retried, nor is anything when the engine was down before we
        began: the op fails at once, and `status` says why."""
        engine = self.images.engine
        was_up = False

        async def once() -> T:
            nonlocal was_up
            was_up = (await engine.status()).reachable
            return await attempt()

        def log_retry(exc: BaseException, _retry: int) -> None:
            log.info("image.pull_retry", image=self.image.original, error=str(exc))

        return await retrying(
            once,
            PULL_RETRY,
            self.images.clock,
            retry_if=lambda exc: was_up and isinstance(exc, EngineUnavailable | _PullBroken),
            on_retry=log_retry,
            ready_again=self._engine_answers,
        )

    async def _engine_answers(self) -> bool:
        """Whether the engine answers, waiting up to `ENGINE_COMEBACK` for it."""
        engine = self.images.engine
        clock = self.images.clock
        deadline = clock.monotonic() + ENGINE_COMEBACK
        while not (await engine.status(fresh=True)).reachable:
            if clock.monotonic() >= deadline:
                return False
            await clock.sleep(ENGINE_POLL)
        return True

    async def _pull(self, client: Any) -> None:
        """Pull by the route's name; an endpoint the engine cannot reach is given up (said
        once) and the image pulled the way it would be without it."""
        routes = self.images.routes
        status = await self.images.engine.status()
        route = routes.choose(self.image, self.credentials, status.registry_mirrors)
        try:
            await self._pull_from(client, route, status.libpod_api)
        except _PullBroken as exc:
            if not routes.unreachable(route, exc.message):
                raise
            log.warning(
                "image.endpoint_unreachable",
                image=self.image.original,
                error=exc.message,
                hint=UNREACHABLE_HINT,
            )
            again = routes.choose(self.image, self.credentials, status.registry_mirrors)
            await self._pull_from(client, again, status.libpod_api)

    async def _pull_from(self, client: Any, route: Route, libpod_api: str | None) -> None:
        """Pull by the route's name, then tag as the job wrote it."""
        image, engine, source = self.image, self.images.engine, route.source
        api = libpod_api if route.via == "endpoint" else None
        log.info("image.pulling", image=image.original, source=source, via=route.via, libpod=api)
        try:
            events = await self._events(client, route, api)
        except docker.errors.APIError as exc:
            cause = self._cause(route)
            raise _pull_error(image.original, source, exc, self.credentials, cause) from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"Docker engine: {exc}") from exc
        failure = next((e for e in events if "error" in e), None)
        if failure is not None:
            said = f"pulling {image.original} from {source} failed: {failure['error']}"
            cause = self._cause(route)
            # The endpoint retried upstream already (with backoff): said once, not again.
            raise (ImageError if cause else _PullBroken)(said + because(cause))
        if route.via != "direct":
            target_repo, target_tag = docker.utils.parse_repository_tag(image.local_name)
            await engine.call(client.api.tag, source, target_repo, target_tag)
            await engine.call(client.api.remove_image, source)

    async def _events(
        self, client: Any, route: Route, libpod_api: str | None
    ) -> list[dict[str, Any]]:
        """The pull's progress events. On Podman the endpoint's names go through libpod's
        pull, TLS not verified (libpod.py); every other pull is the engine's
        Docker-compatible one."""
        engine = self.images.engine
        if libpod_api is not None:
            return await engine.call(libpod.pull, client.api, libpod_api, route.source, route.auth)
        repository, tag = docker.utils.parse_repository_tag(route.source.split("@", 1)[0])
        if self.image.digest:
            tag = self.image.digest
        return await engine.call(
            lambda: list(
                client.api.pull(
                    repository, tag=tag, stream=True, decode=True, auth_config=route.auth
                )
            )
        )

    def _cause(self, route: Route) -> str | None:
        """What the endpoint said of a pull through it (the engine shows only a status)."""
        name = route.endpoint_name
        return self.images.explain(name) if name is not None else None


class _PullBroken(ImageError):
    """The engine reported a pull failed part way: the registry, or the engine stopping."""


def _pull_error(
    original: str,
    source: str,
    exc: docker.errors.APIError,
    credentials: Credentials | None,
    cause: str | None = None,
) -> Exception:
    reason = exc.explanation or str(exc)
    said = reason + because(cause)
    where = f"{original}" + (f" (through {source})" if source != original else "")
    if exc.status_code in (401, 403) or "unauthorized" in reason.lower():
        who = (
            f"as {credentials.username}" if credentials and credentials.username else "anonymously"
        )
        return UpstreamAuthError(f"image {where}: access denied {who}: {said}")
    if exc.status_code == 404 or "not found" in reason.lower() or "manifest unknown" in reason:
        return ImageError(f"image {where} not found: {said}")
    # A cause is the endpoint's, which retried upstream already (with backoff): not again.
    return (ImageError if cause else _PullBroken)(f"pulling image {where} failed: {said}")


def _host_of(place: str) -> str:
    """The host of a registry (`host[:port]`, `[v6]:port`) or a login server (maybe a URL)."""
    try:
        return URL(place if "://" in place else f"https://{place}").host or place
    except ValueError:
        return place  # not a URL at all (a bare IPv6 address): checked as it is
