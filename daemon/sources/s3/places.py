"""Where an S3 resource points, and who may sign for it.

- `s3://nos-ai-models-qllsn32u/...` is Nosana's public bucket: `https://models.nosana.io/...`;
- `s3://bucket/prefix`: the bucket at `s3.endpoint_url` (default AWS), operator credentials;
- `https://host/...` listed in `s3.hosts`: that entry's endpoint and bucket, path = prefix;
- `https://host/path` with a `bucket` field: that bucket at `https://host`, path = prefix;
- `https://host/bucket/prefix` otherwise (path style), read anonymously unless `IAM` is given.

A place is `trusted` when its endpoint comes from the operator's config: only then may the
operator's keys sign for it, and only an untrusted place goes through the SSRF guard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from yarl import URL

from ...errors import InvalidInput
from ...resources import S3Auth, S3Location
from ...settings import S3Settings
from ..identity import ANONYMOUS as ANONYMOUS  # where the S3 modules have it from
from ..identity import sorted_files

NOSANA_BUCKET_URL = "s3://nos-ai-models-qllsn32u"
NOSANA_BUCKET_HOST = "https://models.nosana.io"
RESOURCE_IAM = "the resource's IAM"
OPERATOR_KEYS = "s3.access_key_id"
AWS_CHAIN = "the AWS credential chain"


@dataclass(frozen=True)
class Place:
    """One S3 location, resolved: where to ask, which bucket, which prefix."""

    endpoint: str
    bucket: str
    prefix: str
    files: tuple[str, ...] | None
    trusted: bool
    url: str  # as written (after Nosana's rewrite), for the plain-GET fallback
    aws: bool = False  # AWS's own endpoint: botocore picks it, and follows region redirects

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (
            "" if self.trusted else f" at {self.endpoint}"
        )


@dataclass(frozen=True)
class Credentials:
    """Who signs: a key pair (from IAM or config), the AWS chain, or nobody."""

    access_key_id: str | None
    secret_access_key: str | None = field(repr=False)
    region: str
    origin: str  # RESOURCE_IAM, OPERATOR_KEYS, AWS_CHAIN or ANONYMOUS
    token: str | None = field(default=None, repr=False)  # the chain's temporary credentials

    @property
    def signs(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)

    def describe(self) -> str:
        if self.access_key_id:
            return f"access key {self.access_key_id} ({self.origin})"
        return self.origin


def locate(location: S3Location, bucket_field: str | None, settings: S3Settings) -> Place:
    """The place a resource's `url` (and `bucket`, `files`) names."""
    url = location.url
    if url.startswith(NOSANA_BUCKET_URL):
        url = NOSANA_BUCKET_HOST + url[len(NOSANA_BUCKET_URL) :]
    files = tuple(sorted_files(location.files) or ()) or None
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise InvalidInput(f"{location.url}: no bucket in the URL")
        endpoint = settings.endpoint_url or _aws_endpoint(settings.region)
        aws = settings.endpoint_url is None
        return Place(endpoint, bucket, _folder(prefix), files, True, url, aws)
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput(f"{location.url}: S3 URLs are s3://bucket/prefix or https://host/...")
    path = unquote(parsed.raw_path).lstrip("/")
    origin = str(parsed.origin())
    mapped = settings.hosts.get(parsed.host)
    if mapped is not None:
        return Place(mapped.endpoint_url, mapped.bucket, _folder(path), files, True, url)
    trusted = settings.endpoint_url is not None and origin == settings.endpoint_url
    if bucket_field:
        return Place(origin, bucket_field, _folder(path), files, trusted, url)
    bucket, _, prefix = path.partition("/")
    if not bucket:
        raise InvalidInput(f"{location.url}: no bucket in the URL (https://host/bucket/prefix)")
    return Place(origin, bucket, _folder(prefix), files, trusted, url)


def credentials(iam: S3Auth | None, places: list[Place], settings: S3Settings) -> Credentials:
    """The resource's IAM; else, for places the operator configured, the operator's keys or
    the AWS chain; else nobody (anonymous reads)."""
    if iam is not None:
        secret = iam.SECRET_ACCESS_KEY.get_secret_value()
        return Credentials(iam.ACCESS_KEY_ID, secret, iam.REGION, RESOURCE_IAM)
    region = settings.region or "us-east-1"
    if not all(p.trusted for p in places):
        # Operator credentials never go to a host a job chose.
        return Credentials(None, None, region, ANONYMOUS)
    if settings.access_key_id and settings.secret_access_key:
        secret = settings.secret_access_key.get_secret_value()
        return Credentials(settings.access_key_id, secret, region, OPERATOR_KEYS)
    return Credentials(None, None, region, AWS_CHAIN)


def _aws_endpoint(region: str | None) -> str:
    return f"https://s3.{region}.amazonaws.com" if region else "https://s3.amazonaws.com"


def _folder(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""
