"""Upstreams: one module per resource type behind one shape, and the shared downloader.

`Sources.request(resource)` turns a validated resource into what the store needs, a `Fetch`:
its canonical `EntryRequest` (identity) and a `Resolver` that reaches upstream. Sources never
touch the index; the store never speaks HTTP.
"""

from __future__ import annotations

from ..resources import HFResource, OllamaResource, S3Resource
from ..settings import Settings
from ..store import EntryRequest, Fetch, Resolver
from ..util.clock import Clock
from .hub_upstream import HubUpstream
from .huggingface import HuggingFace
from .ollama import Ollama
from .registry import RegistrySource
from .registry_upstream import RegistryUpstream
from .s3 import S3
from .transfer import Transfer, TransferStats

Resource = HFResource | S3Resource | OllamaResource


class Sources:
    """Every source, built once: the one consumer of the sources' sections (`download`,
    `security`, `huggingface`, `s3`, `ollama`, `docker`) that takes the whole `Settings`, to
    hand each source its own."""

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        self.transfer = Transfer(
            settings.download, allow_private=settings.security.allow_private_urls, clock=clock
        )
        self.huggingface = HuggingFace(
            settings.huggingface, settings.download, self.transfer, clock
        )
        self.hub = HubUpstream(settings.huggingface, self.transfer)
        """What the Hub endpoint (/hf) asks of the upstream Hub."""
        self.s3 = S3(settings.s3, self.transfer, clock)
        self.ollama = Ollama(settings.ollama, self.transfer)
        upstream = RegistryUpstream(
            settings.docker, self.transfer, clock, share_private=settings.site.share_private
        )
        self.registry = RegistrySource(upstream)
        """What the registry endpoint (/v2/) asks of upstream registries."""

    async def start(self) -> None:
        await self.transfer.start()

    async def close(self) -> None:
        await self.s3.close()
        await self.transfer.close()

    def request(self, resource: Resource) -> Fetch[Resolver]:
        fetch: Fetch[Resolver]
        if isinstance(resource, HFResource):
            fetch = self.huggingface.request(resource)
        elif isinstance(resource, S3Resource):
            fetch = self.s3.request(resource)
        else:
            fetch = self.ollama.request(resource)
        return Fetch(_with_resume(fetch.request, resource), fetch.resolver)


def _with_resume(request: EntryRequest, resource: Resource) -> EntryRequest:
    """Remember the resource (never a secret) so a restart can resume its download."""
    secret = getattr(resource, "accessToken", None) or getattr(resource, "IAM", None)
    if secret is not None:
        return request
    body = resource.model_dump_json(exclude={"target", "allowWrite"}, exclude_none=True)
    return EntryRequest(request.key, request.type, request.source, resumable=body)


__all__ = ["Resource", "Sources", "Transfer", "TransferStats"]
