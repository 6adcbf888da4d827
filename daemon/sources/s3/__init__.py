"""S3 prefixes: the control plane through aiobotocore's S3 client, the bytes through transfer.py.

    places.py     where a resource points (Nosana's bucket, s3.hosts, `bucket`, path style)
                  and who signs: the resource's `IAM`, the operator's `s3.*` keys, the AWS
                  credential chain, or nobody (anonymous public reads)
    clients.py    aiobotocore clients, one per endpoint, credentials and SSRF guard, reused
                  and closed with the source
    control.py    ListObjectsV2 (paged) and HeadObject (checksum mode, part 1), and what
                  their failures mean in the project's errors; retried like every transfer
    evidence.py   what each object's bytes are checked against (SHA-256 > CRCs > MD5 ETag)
    signing.py    SigV4 for the data plane's requests
    resolver.py   one resource: list its places, choose evidence with concurrent HEADs, fall
                  back to plain GETs of named `files` where listing is refused, fetch bytes
    source.py     `S3`: a resource's identity and its resolver

The bytes of objects come through the shared downloader (ranged parallel GETs, resume,
retries, the SSRF guard for hosts a job chose), signed per request. botocore exceptions never
leave this package.
"""

from __future__ import annotations

from .places import NOSANA_BUCKET_HOST, NOSANA_BUCKET_URL, Credentials, Place
from .resolver import S3Resolver, object_url
from .source import S3

__all__ = [
    "NOSANA_BUCKET_HOST",
    "NOSANA_BUCKET_URL",
    "S3",
    "Credentials",
    "Place",
    "S3Resolver",
    "object_url",
]
