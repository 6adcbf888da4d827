"""S3 prefixes: listed and fetched over plain HTTP through transfer.py, signed with SigV4.

Every S3 operation (ListObjectsV2, HeadObject, GetObject) is a plain HTTP request, path-style,
signed per request with the resource's `IAM`, the operator's `s3.*` keys or the AWS credential
chain (resolved by aiobotocore), or sent unsigned for anonymous public reads. The requests go
through the same downloader as everything else: ranged parallel GETs, resume, retries, and the
SSRF guard for hosts a job chose. botocore computes signatures; it never moves bytes.

Where a resource points:
- `s3://nos-ai-models-qllsn32u/...` is Nosana's public bucket: `https://models.nosana.io/...`;
- `s3://bucket/prefix`: the bucket at `s3.endpoint_url` (default AWS), operator credentials;
- `https://host/...` listed in `s3.hosts`: that entry's endpoint and bucket, path = prefix;
- `https://host/path` with a `bucket` field: that bucket at `https://host`, path = prefix;
- `https://host/bucket/prefix` otherwise (path style), read anonymously unless `IAM` is given.
A prefix means every object under `prefix/` (keys relative to it in the view); a URL naming
one object gives a view of that one file. When listing is refused and `files` are given, each
file is fetched by GET of `<url>/<file>` after a HEAD for its size.

Verification, while the bytes stream, by the best evidence S3 offers of the whole object:
- a SHA-256 checksum S3 keeps (HEAD with checksum mode): the blob may be here already;
- for a large object, a full-object CRC S3 keeps (CRC64NVME, CRC32C, CRC32): every object
  written since late 2024 has one, and SDK uploads send a CRC32 by default. It guards the
  transfer as well as the MD5 ETag does, at a twentieth of the CPU;
- else the ETag: a single-part ETag is an MD5; a multipart one (`"<md5 of part md5s>-N"`) is
  checked with the part size a HEAD of part 1 reveals.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote
from xml.etree import ElementTree

import aiobotocore.session
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from yarl import URL

from ..aiotasks import all_or_nothing
from ..errors import (
    InvalidInput,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
)
from ..resources import S3Auth, S3Location, S3Resource
from ..settings import S3Settings
from ..store import CRC_ALGORITHMS, BlobSink, Crc, EntryRequest, Expected, FileSpec, Manifest
from .identity import canonical, sorted_files
from .netguard import check_url
from .transfer import Signer, Transfer

NOSANA_BUCKET_URL = "s3://nos-ai-models-qllsn32u"
NOSANA_BUCKET_HOST = "https://models.nosana.io"
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_MULTIPART = re.compile(r"^([0-9a-f]{32})-(\d+)$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_CHECKSUM_PREFERENCE = ("SHA256", *CRC_ALGORITHMS)
CRC_HEAD_MIN_SIZE = 8 * 1024 * 1024
"""Below this, a HEAD for the object's CRC costs more than checking its MD5 ETag."""


@dataclass(frozen=True)
class Place:
    """One S3 location, resolved: where to ask, which bucket, which prefix."""

    endpoint: str
    bucket: str
    prefix: str
    files: tuple[str, ...] | None
    trusted: bool
    url: str  # as written (after Nosana's rewrite), for the plain-GET fallback

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (
            "" if self.trusted else f" at {self.endpoint}"
        )


@dataclass(frozen=True)
class Credentials:
    """Who signs: a key pair (from IAM or config), the AWS chain, or nobody."""

    access_key_id: str | None
    secret_access_key: str | None
    region: str
    origin: str  # "the resource's IAM", "s3.access_key_id", "the AWS credential chain", "anonymous"

    def describe(self) -> str:
        if self.access_key_id:
            return f"access key {self.access_key_id} ({self.origin})"
        return self.origin


@dataclass(frozen=True)
class _Object:
    key: str
    size: int
    etag: str
    checksums: frozenset[str] = frozenset()  # the algorithms the listing says S3 keeps


class S3:
    def __init__(self, settings: S3Settings, transfer: Transfer) -> None:
        self.settings = settings
        self.transfer = transfer
        self._session = aiobotocore.session.get_session()

    def request(self, resource: S3Resource) -> tuple[EntryRequest, _S3Resolver]:
        places = [self._place(loc, resource.bucket) for loc in resource.locations()]
        credentials = self._credentials(resource.IAM, places)
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
            "credential": credentials.access_key_id or credentials.origin,
        }
        source = " + ".join(f"s3://{p.bucket}/{p.prefix}".rstrip("/") for p in places)
        request = EntryRequest(key=canonical(identity), type="s3", source=source)
        return request, _S3Resolver(self, places, credentials)

    def _place(self, location: S3Location, bucket_field: str | None) -> Place:
        url = location.url
        if url.startswith(NOSANA_BUCKET_URL):
            url = NOSANA_BUCKET_HOST + url[len(NOSANA_BUCKET_URL) :]
        files = tuple(sorted_files(location.files) or ()) or None
        if url.startswith("s3://"):
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            if not bucket:
                raise InvalidInput(f"{location.url}: no bucket in the URL")
            return Place(self._default_endpoint(), bucket, _folder(prefix), files, True, url)
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidInput(
                f"{location.url}: S3 URLs are s3://bucket/prefix or https://host/..."
            )
        path = unquote(parsed.raw_path).lstrip("/")
        origin = str(parsed.origin())
        mapped = self.settings.hosts.get(parsed.host)
        if mapped is not None:
            return Place(mapped.endpoint_url, mapped.bucket, _folder(path), files, True, url)
        trusted = self.settings.endpoint_url is not None and origin == self.settings.endpoint_url
        if bucket_field:
            return Place(origin, bucket_field, _folder(path), files, trusted, url)
        bucket, _, prefix = path.partition("/")
        if not bucket:
            raise InvalidInput(f"{location.url}: no bucket in the URL (https://host/bucket/prefix)")
        return Place(origin, bucket, _folder(prefix), files, trusted, url)

    def _default_endpoint(self) -> str:
        if self.settings.endpoint_url:
            return self.settings.endpoint_url
        region = self.settings.region
        return f"https://s3.{region}.amazonaws.com" if region else "https://s3.amazonaws.com"

    def _credentials(self, iam: S3Auth | None, places: list[Place]) -> Credentials:
        if iam is not None:
            return Credentials(
                iam.ACCESS_KEY_ID,
                iam.SECRET_ACCESS_KEY.get_secret_value(),
                iam.REGION,
                "the resource's IAM",
            )
        region = self.settings.region or "us-east-1"
        if not all(p.trusted for p in places):
            # Operator credentials never go to a host a job chose.
            return Credentials(None, None, region, "anonymous")
        if self.settings.access_key_id and self.settings.secret_access_key:
            return Credentials(
                self.settings.access_key_id,
                self.settings.secret_access_key.get_secret_value(),
                region,
                "s3.access_key_id",
            )
        return Credentials(None, None, region, "the AWS credential chain")


class _S3Resolver:
    def __init__(self, s3: S3, places: list[Place], credentials: Credentials) -> None:
        self.s3 = s3
        self.places = places
        self.credentials = credentials
        self._signer: Signer | None = None
        self._signer_ready = False

    async def close(self) -> None:
        return None

    async def _sign(self) -> Signer | None:
        """SigV4 headers per request (S3 accepts them for 15 minutes, so every request,
        retries included, is signed when it is sent); None for anonymous reads."""
        if not self._signer_ready:
            self._signer = await self._make_signer()
            self._signer_ready = True
        return self._signer

    async def _make_signer(self) -> Signer | None:
        creds = self.credentials
        if creds.access_key_id and creds.secret_access_key:
            frozen = BotoCredentials(creds.access_key_id, creds.secret_access_key)
        elif creds.origin == "the AWS credential chain":
            chain = await self.s3._session.get_credentials()
            if chain is None:
                self.credentials = Credentials(None, None, creds.region, "anonymous")
                return None
            got = await chain.get_frozen_credentials()
            frozen = BotoCredentials(got.access_key, got.secret_key, got.token)
            self.credentials = Credentials(got.access_key, None, creds.region, creds.origin)
        else:
            return None
        region = creds.region

        def sign(method: str, url: URL, headers: Mapping[str, str]) -> dict[str, str]:
            amz = {k: v for k, v in headers.items() if k.lower().startswith("x-amz-")}
            request = AWSRequest(method=method, url=str(url), headers=amz)
            S3SigV4Auth(frozen, "s3", region).add_auth(request)
            return dict(request.headers.items())

        return sign

    def _object_url(self, place: Place, key: str) -> URL:
        return URL(f"{place.endpoint}/{place.bucket}/{quote(key, safe='/~')}", encoded=True)

    def _list_url(self, place: Place, prefix: str, token: str | None) -> URL:
        query = f"list-type=2&prefix={quote(prefix, safe='~')}"
        if token:
            query += f"&continuation-token={quote(token, safe='~')}"
        return URL(f"{place.endpoint}/{place.bucket}?{query}", encoded=True)

    async def resolve(self) -> Manifest:
        specs: dict[str, FileSpec] = {}
        listing_digest = hashlib.sha256()
        for place in self.places:
            for spec in await self._place_files(place):
                if spec.path in specs:
                    raise UpstreamError(
                        f"{spec.path} is in more than one of the resource's buckets"
                    )
                specs[spec.path] = spec
        for path in sorted(specs):
            spec = specs[path]
            listing_digest.update(f"{path}\0{spec.alias}\n".encode())
        details = {
            "locations": [p.describe() for p in self.places],
            "credential": self.credentials.describe(),
        }
        return Manifest(
            version="listing:" + listing_digest.hexdigest()[:32],
            files=tuple(specs[p] for p in sorted(specs)),
            details=details,
        )

    async def _place_files(self, place: Place) -> list[FileSpec]:
        try:
            objects = await self._list(place)
        except (UpstreamAuthError, UpstreamNotFound) as exc:
            if not place.files:
                raise self._denied(place, exc) from exc
            return [await self._head_file(place, f) for f in place.files]
        return await self._select(place, objects)

    def _denied(self, place: Place, exc: UpstreamError) -> UpstreamError:
        hint = (
            "; give `files` to fetch them without listing"
            if isinstance(exc, UpstreamAuthError)
            else ""
        )
        kind = type(exc)
        return kind(
            f"{place.describe()}: listing failed with {self.credentials.describe()}: "
            f"{exc.message}{hint}"
        )

    async def _list(self, place: Place) -> list[_Object]:
        objects: list[_Object] = []
        token: str | None = None
        prefix = place.prefix.rstrip("/")
        sign = await self._sign()
        while True:
            response = await self.s3.transfer.get(
                self._list_url(place, prefix, token),
                name=place.describe(),
                trusted=place.trusted,
                sign=sign,
            )
            page, token = _parse_listing(response.body)
            objects.extend(page)
            if not token:
                return objects

    async def _select(self, place: Place, objects: list[_Object]) -> list[FileSpec]:
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

        async def spec(path: str, obj: _Object) -> None:
            specs[path] = await self._spec(place, path, obj)

        # Concurrently: some objects take a HEAD (their checksum, a multipart ETag's part
        # size), and a hundred of them one after another would cost a hundred round trips.
        await all_or_nothing([spec(path, obj) for path, obj in by_path.items()])
        return [specs[path] for path in sorted(specs)]

    async def _spec(self, place: Place, path: str, obj: _Object) -> FileSpec:
        etag = obj.etag.strip('"')
        expected = Expected(size=obj.size)
        stored = await self._stored_checksum(place, obj) if _worth_a_head(obj) else None
        if stored is not None and stored[0] == "SHA256":
            expected = Expected(size=obj.size, sha256=stored[1].hex())  # finds blobs here too
        elif stored is not None:
            crc = Crc(stored[0], int.from_bytes(stored[1], "big"))
            expected = Expected(size=obj.size, crc=crc)
        elif _MD5.match(etag):
            expected = Expected(size=obj.size, md5=etag)
        elif _MULTIPART.match(etag) and obj.size > 0:
            part_size = await self._part_size(place, obj.key)
            if part_size:
                expected = Expected(size=obj.size, multipart_etag=etag, part_size=part_size)
        alias = f"s3:{place.endpoint}/{place.bucket}/{obj.key}#{etag}"
        locator = ("object", obj.key)
        return FileSpec(path=path, expected=expected, alias=alias, locator=(place, locator))

    async def _stored_checksum(self, place: Place, obj: _Object) -> tuple[str, bytes] | None:
        """The best checksum S3 keeps of the whole object (HEAD with checksum mode): its
        algorithm and value, or None. A checksum of part checksums (`...-N`, type COMPOSITE)
        does not count.
        """
        try:
            response = await self.s3.transfer.get(
                self._object_url(place, obj.key),
                name=f"{place.describe()}{obj.key}",
                trusted=place.trusted,
                method="HEAD",
                headers={"x-amz-checksum-mode": "ENABLED"},
                sign=await self._sign(),
            )
        except UpstreamError:
            return None
        kind = response.headers.get("x-amz-checksum-type")
        if kind is None and _MULTIPART.match(obj.etag.strip('"')):
            return None  # unsaid, and a multipart object's may be a checksum of part checksums
        if kind not in (None, "FULL_OBJECT"):
            return None
        for algorithm in _CHECKSUM_PREFERENCE:
            value = response.headers.get(f"x-amz-checksum-{algorithm.lower()}", "")
            if not value or "-" in value:
                continue
            try:
                return algorithm, base64.b64decode(value, validate=True)
            except ValueError:
                continue
        return None

    async def _part_size(self, place: Place, key: str) -> int | None:
        url = URL(f"{self._object_url(place, key)}?partNumber=1", encoded=True)
        try:
            response = await self.s3.transfer.get(
                url,
                name=f"{place.describe()}{key}",
                trusted=place.trusted,
                method="HEAD",
                ok=(200, 206),
                sign=await self._sign(),
            )
        except UpstreamError:
            return None  # unverifiable beyond its size; still fetched
        length = response.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None

    async def _head_file(self, place: Place, path: str) -> FileSpec:
        """Listing refused: learn a named file's size (and ETag) from a HEAD of its URL."""
        url = self._plain_url(place, path)
        response = await self.s3.transfer.get(
            url,
            name=f"{place.url}/{path}",
            trusted=place.trusted,
            method="HEAD",
            sign=await self._sign(),
        )
        length = response.headers.get("Content-Length", "")
        if not length.isdigit():
            raise UpstreamError(f"{url}: no Content-Length, cannot fetch without a listing")
        etag = response.headers.get("ETag", "").strip('"')
        expected = Expected(size=int(length), md5=etag if _MD5.match(etag) else None)
        alias = f"url:{url}#{etag}" if etag else None
        return FileSpec(path=path, expected=expected, alias=alias, locator=(place, ("url", url)))

    def _plain_url(self, place: Place, path: str) -> URL:
        base = place.url.rstrip("/")
        if place.url.startswith("s3://"):
            return URL(
                f"{place.endpoint}/{place.bucket}/{quote(place.prefix + path)}", encoded=True
            )
        url = check_url(base, allow_private=self.s3.transfer.allow_private)
        return URL(f"{url}/{quote(path)}", encoded=True)

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        place, (kind, what) = file.locator
        url = what if kind == "url" else self._object_url(place, what)
        try:
            await self.s3.transfer.download(
                url, sink, name=file.path, trusted=place.trusted, sign=await self._sign()
            )
        except UpstreamAuthError as exc:
            raise UpstreamAuthError(
                f"{place.describe()}{file.path}: denied with {self.credentials.describe()}: "
                f"{exc.message}"
            ) from exc


def _folder(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def _worth_a_head(obj: _Object) -> bool:
    """Whether to ask S3 for the checksum it keeps: a SHA-256 always (a blob already here is
    then found before any byte moves); a CRC for a large object, where checking it instead of
    the MD5 ETag saves real CPU (MD5 runs at about 600 MiB/s a core, a CRC at several GB/s)."""
    if "SHA256" in obj.checksums:
        return True
    return obj.size >= CRC_HEAD_MIN_SIZE and bool(obj.checksums & set(CRC_ALGORITHMS))


def _parse_listing(body: bytes) -> tuple[list[_Object], str | None]:
    """One ListObjectsV2 page: its objects and the continuation token, if any."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise UpstreamError(f"S3 listing is not XML: {exc}") from exc
    ns = _NS if root.tag.startswith(_NS) else ""
    encoded = (root.findtext(f"{ns}EncodingType") or "") == "url"
    objects = []
    for item in root.iter(f"{ns}Contents"):
        key = item.findtext(f"{ns}Key") or ""
        size = item.findtext(f"{ns}Size") or "0"
        etag = item.findtext(f"{ns}ETag") or ""
        algorithms = frozenset(a.text or "" for a in item.iter(f"{ns}ChecksumAlgorithm"))
        objects.append(_Object(unquote(key) if encoded else key, int(size), etag, algorithms))
    truncated = (root.findtext(f"{ns}IsTruncated") or "false").lower() == "true"
    token = root.findtext(f"{ns}NextContinuationToken") if truncated else None
    return objects, token
