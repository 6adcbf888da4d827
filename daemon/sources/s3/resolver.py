"""One S3 resource's resolver: what its places hold now (listing, HEADs), then their bytes.

A prefix means every object under `prefix/` (keys relative to it in the view); a URL naming
one object gives a view of that one file. When listing is refused and `files` are given, each
file is fetched by GET of `<url>/<file>` after a HEAD for its size: plain HTTP(S) through
transfer.py, since such a host (a CDN in front of a bucket) need not speak S3 at all.

A bucket in another region than the credentials': botocore follows S3's region redirect for
the listing (and remembers it for the HEADs); the bytes are then signed for that region too,
and on AWS fetched from that region's endpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from urllib.parse import quote

from yarl import URL

from ...errors import UpstreamAuthError, UpstreamError, UpstreamNotFound, UpstreamTooLarge
from ...store import BlobSink, EntryDetails, Expected, FileSpec, Manifest
from ...util.aiotasks import all_or_nothing
from ...util.limits import ENTRY_FILES
from ..netguard import check_url
from ..redirects import Signer
from ..transfer import Transfer
from . import evidence
from .clients import S3Clients
from .control import ControlPlane, S3Object
from .places import Credentials, Place
from .signing import signer


class S3Resolver:
    def __init__(
        self,
        control: ControlPlane,
        transfer: Transfer,
        places: list[Place],
        credentials: Credentials,
    ) -> None:
        self.control = control
        self.transfer = transfer
        self.places = places
        self.credentials = credentials
        self._resolved = False
        self._signer: Signer | None = None
        self._regions: dict[Place, str] = {}  # where S3 redirected a place's bucket

    async def close(self) -> None:
        return None  # the clients are the source's, shared with other resolvers

    async def _who(self) -> Credentials:
        """The credentials, with the AWS chain asked once for its current keys."""
        if not self._resolved:
            clients: S3Clients = self.control.clients
            self.credentials = await clients.resolve(self.credentials)
            self._signer = signer(self.credentials)
            self._resolved = True
        return self.credentials

    async def resolve(self) -> Manifest:
        specs: dict[str, FileSpec] = {}
        for place in self.places:
            for spec in await self._place_files(place):
                if spec.path in specs:
                    raise UpstreamError(
                        f"{spec.path} is in more than one of the resource's buckets"
                    )
                specs[spec.path] = spec
            too_many = ENTRY_FILES.over(len(specs), "the resource's buckets")
            if too_many:
                raise UpstreamTooLarge(too_many)
        listing_digest = hashlib.sha256()
        for path in sorted(specs):
            listing_digest.update(f"{path}\0{specs[path].alias}\n".encode())
        details: EntryDetails = {
            "locations": [p.describe() for p in self.places],
            "credential": self.credentials.describe(),
        }
        return Manifest(
            version="listing:" + listing_digest.hexdigest()[:32],
            files=tuple(specs[p] for p in sorted(specs)),
            details=details,
        )

    async def _place_files(self, place: Place) -> list[FileSpec]:
        credentials = await self._who()
        try:
            listing = await self.control.list(place, credentials, most=ENTRY_FILES)
        except (UpstreamAuthError, UpstreamNotFound) as exc:
            if not place.files:
                if isinstance(exc, UpstreamAuthError):
                    raise UpstreamAuthError(
                        f"{exc.message}; give `files` to fetch them without listing"
                    ) from exc
                raise
            return [await self._head_file(place, f) for f in place.files]
        if listing.region and listing.region != credentials.region:
            self._regions[place] = listing.region
        return await self._select(place, listing.objects)

    async def _select(self, place: Place, objects: list[S3Object]) -> list[FileSpec]:
        """Objects under the prefix (as a folder), or the one object the URL names."""
        folder = place.prefix
        exact = folder.rstrip("/")
        inside = [o for o in objects if o.key.startswith(folder) and not o.key.endswith("/")]
        if not inside and exact:
            inside = [o for o in objects if o.key == exact]
            folder = exact.rsplit("/", 1)[0] + "/" if "/" in exact else ""
        by_path = {o.key[len(folder) :]: o for o in inside}
        if place.files:
            missing = [f for f in place.files if f not in by_path]
            if missing:
                raise UpstreamNotFound(f"{place.describe()}: no such file(s): {', '.join(missing)}")
            by_path = {f: by_path[f] for f in place.files}
        if not by_path:
            raise UpstreamNotFound(f"{place.describe()}: no objects there")
        specs: dict[str, FileSpec] = {}

        async def spec(path: str, obj: S3Object) -> None:
            specs[path] = await self._spec(place, path, obj)

        # Concurrently: some objects take a HEAD (their checksum, a multipart ETag's part
        # size), and a hundred of them one after another would cost a hundred round trips.
        await all_or_nothing([spec(path, obj) for path, obj in by_path.items()])
        return [specs[path] for path in sorted(specs)]

    async def _spec(self, place: Place, path: str, obj: S3Object) -> FileSpec:
        stored = await self._stored_checksum(place, obj) if evidence.worth_a_head(obj) else None
        part = None
        if evidence.needs_part_size(obj, stored):
            part = await self._part_size(place, obj)
        etag = obj.etag.strip('"')
        alias = f"s3:{place.endpoint}/{place.bucket}/{obj.key}#{etag}"
        return FileSpec(
            path=path,
            expected=evidence.expected(obj, stored, part),
            alias=alias,
            locator=(place, ("object", obj.key)),
        )

    async def _stored_checksum(self, place: Place, obj: S3Object) -> tuple[str, bytes] | None:
        try:
            head = await self.control.head(
                place, await self._who(), obj.key, ChecksumMode="ENABLED"
            )
        except UpstreamError:
            return None  # the ETag still vouches for it
        return evidence.stored_checksum(head, obj.etag)

    async def _part_size(self, place: Place, obj: S3Object) -> int | None:
        try:
            head = await self.control.head(place, await self._who(), obj.key, PartNumber=1)
        except UpstreamError:
            return None  # unverifiable beyond its size; still fetched
        return evidence.part_size(head)

    async def _head_file(self, place: Place, path: str) -> FileSpec:
        """Listing refused: learn a named file's size (and ETag) from a HEAD of its URL."""
        url = self._plain_url(place, path)
        response = await self.transfer.get(
            url, name=f"{place.url}/{path}", trusted=place.trusted, method="HEAD", sign=self._signer
        )
        length = response.headers.get("Content-Length", "")
        if not length.isdigit():
            raise UpstreamError(f"{url}: no Content-Length, cannot fetch without a listing")
        etag = response.headers.get("ETag", "").strip('"')
        md5 = etag if evidence.MD5.match(etag) else None
        alias = f"url:{url}#{etag}" if etag else None
        return FileSpec(
            path=path,
            expected=Expected(size=int(length), md5=md5),
            alias=alias,
            locator=(place, ("url", url)),
        )

    def _plain_url(self, place: Place, path: str) -> URL:
        if place.url.startswith("s3://"):
            key = quote(place.prefix + path)
            return URL(f"{place.endpoint}/{place.bucket}/{key}", encoded=True)
        url = check_url(place.url.rstrip("/"), allow_private=self.transfer.allow_private)
        return URL(f"{url}/{quote(path)}", encoded=True)

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        place, (kind, what) = file.locator
        await self._who()
        url, sign = what, self._signer
        if kind == "object":
            region = self._regions.get(place)
            url = object_url(place, what, region)
            if region is not None:  # signed for the bucket's region, as the listing was
                sign = signer(replace(self.credentials, region=region))
        try:
            await self.transfer.download(
                url, sink, name=file.path, trusted=place.trusted, sign=sign
            )
        except UpstreamAuthError as exc:
            raise UpstreamAuthError(
                f"{place.describe()}{file.path}: denied with {self.credentials.describe()}: "
                f"{exc.message}"
            ) from exc


def object_url(place: Place, key: str, region: str | None = None) -> URL:
    """An object's path-style URL; on AWS, at the endpoint of the region S3 sent us to."""
    endpoint = f"https://s3.{region}.amazonaws.com" if place.aws and region else place.endpoint
    return URL(f"{endpoint}/{place.bucket}/{quote(key, safe='/~')}", encoded=True)
