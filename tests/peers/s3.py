"""moto's S3 server on a free loopback port, with a real IAM user and a switch for auth.

moto accepts any credentials unless IAM authentication is enabled; with it on, requests must
be signed by a key of a user moto knows, so wrong keys get a real 403. But moto's auth layer
cannot handle anonymous requests at all (it fails on the missing Authorization header), so it
stays off by default and tests of credentials turn it on with `authentication()`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


class S3Peer:
    name = "moto"

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""
        self.access_key = ""
        self.secret_key = ""

    def start(self) -> S3Peer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        iam = boto3.client(
            "iam",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="AKIABOOTSTRAP000000",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="tester")
        iam.put_user_policy(
            UserName="tester", PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL)
        )
        key = iam.create_access_key(UserName="tester")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        return self

    @contextlib.contextmanager
    def authentication(self) -> Iterator[None]:
        """Within this block, moto checks signatures and keys as AWS does."""
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        try:
            yield
        finally:
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")

    def iam(self) -> dict[str, str]:
        """The `IAM` block of an S3 resource with this peer's valid keys."""
        return {
            "REGION": REGION,
            "ACCESS_KEY_ID": self.access_key,
            "SECRET_ACCESS_KEY": self.secret_key,
        }

    def operator_env(self) -> dict[str, str]:
        """The same keys as the operator's `s3.*` settings."""
        return {
            "NOSANA_CACHE_S3__ACCESS_KEY_ID": self.access_key,
            "NOSANA_CACHE_S3__SECRET_ACCESS_KEY": self.secret_key,
            "NOSANA_CACHE_S3__REGION": REGION,
        }

    def client(self, **overrides: Any) -> Any:
        """A boto3 client with the valid keys (what a user would run by hand)."""
        options: dict[str, Any] = {
            "endpoint_url": self.url,
            "region_name": REGION,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "config": Config(s3={"addressing_style": "path"}),
        }
        options.update(overrides)
        return boto3.client("s3", **options)

    def bucket(self, name: str, objects: dict[str, bytes], *, public: bool = False) -> None:
        """Create `name` with `objects` (key → bytes); public-read objects when `public`."""
        client = self.client()
        client.create_bucket(Bucket=name)
        for key, data in objects.items():
            extra = {"ACL": "public-read"} if public else {}
            client.put_object(Bucket=name, Key=key, Body=data, **extra)

    def stop(self) -> None:
        self._server.stop()
