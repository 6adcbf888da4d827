"""The S3 source: a resource's identity, and a resolver that reaches its places."""

from __future__ import annotations

from ...resources import S3Resource
from ...settings import S3Settings
from ...store import EntryRequest, Fetch
from ...util.clock import Clock
from ...util.retry import RetryPolicy
from ..identity import canonical
from ..transfer import Transfer
from .clients import S3Clients
from .control import ControlPlane
from .places import credentials, locate
from .resolver import S3Resolver


class S3:
    def __init__(self, settings: S3Settings, transfer: Transfer, clock: Clock) -> None:
        self.settings = settings
        self.transfer = transfer
        self.clients = S3Clients(transfer.settings, allow_private=transfer.allow_private)
        policy = RetryPolicy(transfer.settings.max_retries)
        self.control = ControlPlane(self.clients, policy, clock)

    async def close(self) -> None:
        await self.clients.close()

    def request(self, resource: S3Resource) -> Fetch[S3Resolver]:
        places = [locate(loc, resource.bucket, self.settings) for loc in resource.locations()]
        who = credentials(resource.IAM, places, self.settings)
        identity = {
            "type": "S3",
            "locations": [
                {
                    "endpoint": p.endpoint,
                    "bucket": p.bucket,
                    "prefix": p.prefix,
                    "files": list(p.files) if p.files else None,
                }
                for p in places
            ],
            "credential": who.access_key_id or who.origin,
        }
        source = " + ".join(f"s3://{p.bucket}/{p.prefix}".rstrip("/") for p in places)
        request = EntryRequest(key=canonical(identity), type="s3", source=source)
        return Fetch(request, S3Resolver(self.control, self.transfer, places, who))
