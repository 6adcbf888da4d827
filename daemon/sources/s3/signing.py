"""SigV4 for the data plane: object bytes come through transfer.py's ranged parallel GETs, and
each of those requests is signed with the same credentials the control plane used.

transfer.py rather than aiobotocore's get_object: it resumes a dropped part where it stopped,
and it is faster (bench/s3_dataplane.py, 1.5 GB cold, 9 alternating runs on 2 CPUs: 330 MiB/s
against 287, the same parts and concurrency streamed through get_object).

S3 accepts a signature for 15 minutes, so every request, retries and resumed parts included,
is signed when it is sent; botocore computes the signature, it never moves these bytes.
botocore's signer is imported when the first signed request is made, not at the daemon's start.
"""

from __future__ import annotations

from collections.abc import Mapping

from yarl import URL

from ..redirects import Signer
from .places import Credentials


def signer(credentials: Credentials) -> Signer | None:
    """Headers that sign one request with `credentials`; None for anonymous reads."""
    if not credentials.signs:
        return None
    from botocore.auth import S3SigV4Auth  # lazily: see the docstring
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    frozen = BotoCredentials(
        credentials.access_key_id, credentials.secret_access_key, credentials.token
    )
    region = credentials.region

    def sign(method: str, url: URL, headers: Mapping[str, str]) -> dict[str, str]:
        amz = {k: v for k, v in headers.items() if k.lower().startswith("x-amz-")}
        request = AWSRequest(method=method, url=str(url), headers=amz)
        S3SigV4Auth(frozen, "s3", region).add_auth(request)
        return dict(request.headers.items())

    return sign
