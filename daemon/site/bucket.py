"""The site store's bucket, as the S3 source reaches buckets: the same clients, the same bytes.

Control-plane calls (HEAD, PUT, multipart, LIST, DELETE) go through the S3 source's
`ControlPlane` (aiobotocore, one retry policy, botocore's exceptions converted there); object
bytes come through a `Transfer` of the site's own (transfer.py, signed per request with SigV4),
so site reads and upstream reads are counted and bounded apart. Both are tuned to give up
quickly: the site store is an optimisation, and a read that stalls for `site.stall_timeout`
falls back to upstream rather than keeping a job waiting.

Errors are the project's: `UpstreamNotFound` for a missing object, `AlreadyExists` when a
conditional write lost, `UpstreamUnavailable` when the store does not answer in time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import AlreadyExists, UpstreamNotFound
from ..settings import DownloadSettings, SiteSettings
from ..sources.s3 import Credentials, Place, object_url
from ..sources.s3.clients import S3Clients
from ..sources.s3.control import ControlPlane, S3Object
from ..sources.s3.places import AWS_CHAIN
from ..sources.s3.signing import signer
from ..sources.transfer import Transfer
from ..util.clock import Clock
from ..util.retry import RetryPolicy

SITE_KEYS = "site.access_key_id"
SITE_RETRIES = 1
"""Attempts after the first for one site operation: enough for a dropped connection, not for
a store that is down (upstream is the fallback)."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    last_modified: float | None


@dataclass(frozen=True)
class PendingUpload:
    key: str
    upload_id: str
    initiated: float | None


def site_download_settings(site: SiteSettings, download: DownloadSettings) -> DownloadSettings:
    """The downloader's settings for the site store: short timeouts, one retry."""
    return download.model_copy(
        update={
            "connect_timeout": min(download.connect_timeout, site.stall_timeout),
            "stall_timeout": site.stall_timeout,
            "max_retries": SITE_RETRIES,
        }
    )


class SiteBucket:
    def __init__(self, settings: SiteSettings, download: DownloadSettings, clock: Clock) -> None:
        assert settings.store is not None
        bucket, _, prefix = settings.store.removeprefix("s3://").partition("/")
        aws = settings.endpoint_url is None
        region = settings.region or "us-east-1"
        endpoint = settings.endpoint_url or f"https://s3.{region}.amazonaws.com"
        self.url = settings.store
        self.prefix = prefix
        self.place = Place(endpoint, bucket, prefix, None, True, settings.store, aws)
        secret = settings.secret_access_key
        if settings.access_key_id and secret is not None:
            self.credentials = Credentials(
                settings.access_key_id, secret.get_secret_value(), region, SITE_KEYS
            )
        else:
            self.credentials = Credentials(None, None, region, AWS_CHAIN)
        self.settings = site_download_settings(settings, download)
        self.clients = S3Clients(self.settings, allow_private=True, keep=2)
        self.control = ControlPlane(self.clients, RetryPolicy(SITE_RETRIES), clock)
        self.transfer = Transfer(self.settings, allow_private=True, clock=clock)
        self._resolved = False

    async def start(self) -> None:
        await self.transfer.start()

    async def close(self) -> None:
        await self.clients.close()
        await self.transfer.close()

    async def _who(self) -> Credentials:
        """The credentials, with the AWS chain asked once for its current keys."""
        if not self._resolved:
            self.credentials = await self.clients.resolve(self.credentials)
            self._resolved = True
        return self.credentials

    async def _call(self, operation: str, what: str, **params: Any) -> dict[str, Any]:
        params = {"Bucket": self.place.bucket, **params}
        return await self.control.call(self.place, await self._who(), operation, params, what)

    # -- reading ------------------------------------------------------------------------------

    async def get(self, key: str, span: tuple[int, int] | None = None) -> bytes:
        """An object's bytes (or `[start, end)` of them) through transfer.py, signed."""
        who = await self._who()
        headers = {"Range": f"bytes={span[0]}-{span[1] - 1}"} if span else {}
        response = await self.transfer.get(
            object_url(self.place, key),
            name=f"{self.url}/{key.removeprefix(self.prefix).lstrip('/')}",
            trusted=True,
            headers=headers,
            ok=(206,) if span else (200,),
            sign=signer(who),
        )
        return response.body

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = await self._call("head_object", f"HEAD of {key}", Key=key)
        except UpstreamNotFound:
            return None
        moment = answer.get("LastModified")
        return ObjectInfo(
            int(answer.get("ContentLength", 0)),
            moment.timestamp() if moment is not None else None,
        )

    async def listing(self, folder: str) -> list[S3Object]:
        """Every object whose key starts with `folder` (paged)."""
        place = replace(self.place, prefix=folder)
        listed = await self.control.list(place, await self._who())
        return [o for o in listed.objects if o.key.startswith(folder)]

    # -- writing ------------------------------------------------------------------------------

    async def put(self, key: str, body: bytes, *, if_absent: bool) -> bool:
        """Write an object; with `if_absent`, only if there is none (False: one was there)."""
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            await self._call("put_object", f"PUT of {key}", Key=key, Body=body, **condition)
        except AlreadyExists:
            return False
        return True

    async def touch(self, key: str) -> None:
        """Copy an object onto itself: written anew for the bucket's lifecycle rules."""
        await self._call(
            "copy_object",
            f"refresh of {key}",
            Key=key,
            CopySource={"Bucket": self.place.bucket, "Key": key},
            MetadataDirective="REPLACE",
        )

    async def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 at a time
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            await self._call(
                "delete_objects", f"DELETE of {len(batch)} objects", Delete={"Objects": batch}
            )

    async def start_upload(self, key: str) -> str:
        answer = await self._call("create_multipart_upload", f"upload of {key}", Key=key)
        return str(answer["UploadId"])

    async def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str:
        answer = await self._call(
            "upload_part",
            f"part {number} of {key}",
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
        )
        return str(answer["ETag"])

    async def parts_done(self, key: str, upload_id: str) -> dict[int, str] | None:
        """Parts an unfinished upload already holds (number → ETag); None if it is gone."""
        parts: dict[int, str] = {}
        marker = 0
        while True:
            try:
                answer = await self._call(
                    "list_parts",
                    f"parts of {key}",
                    Key=key,
                    UploadId=upload_id,
                    PartNumberMarker=marker,
                )
            except UpstreamNotFound:
                return None
            parts |= {int(p["PartNumber"]): str(p["ETag"]) for p in answer.get("Parts", ())}
            if not answer.get("IsTruncated"):
                return parts
            marker = int(answer["NextPartNumberMarker"])

    async def finish_upload(
        self, key: str, upload_id: str, parts: dict[int, str], *, if_absent: bool
    ) -> bool:
        """Complete a multipart upload; with `if_absent`, False when the object was there."""
        listed = [{"PartNumber": n, "ETag": parts[n]} for n in sorted(parts)]
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            await self._call(
                "complete_multipart_upload",
                f"completion of {key}",
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},
                **condition,
            )
        except AlreadyExists:
            await self.abort_upload(key, upload_id)
            return False
        return True

    async def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            await self._call(
                "abort_multipart_upload", f"abort of {key}", Key=key, UploadId=upload_id
            )
        except UpstreamNotFound:
            return

    async def unfinished_uploads(self, folder: str) -> list[PendingUpload]:
        """Multipart uploads begun under `folder` and never completed nor aborted."""
        found: list[PendingUpload] = []
        params: dict[str, Any] = {"Prefix": folder}
        while True:
            answer = await self._call("list_multipart_uploads", "listing of uploads", **params)
            for item in answer.get("Uploads", ()):
                moment = item.get("Initiated")
                initiated = moment.timestamp() if moment is not None else None
                found.append(PendingUpload(str(item["Key"]), str(item["UploadId"]), initiated))
            if not answer.get("IsTruncated"):
                return found
            params["KeyMarker"] = answer.get("NextKeyMarker", "")
            params["UploadIdMarker"] = answer.get("NextUploadIdMarker", "")
