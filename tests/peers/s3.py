"""moto's S3 server on a free loopback port, with helpers to fill buckets."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCESS_KEY = "AKIATESTKEY0000001"
SECRET_KEY = "test-secret-key-0000000000000000000000000"


class S3Peer:
    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> S3Peer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def client(self, **overrides: Any) -> Any:
        """A boto3 client with the test credentials (what a user would run by hand)."""
        options: dict[str, Any] = {
            "endpoint_url": self.url,
            "region_name": REGION,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
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
