"""s3rver (npm, Node.js) on a free loopback port: a second S3 implementation beside moto.

It is not AWS's code and it shows: its XML is written under another namespace
(`http://doc.s3.amazonaws.com/2006-03-01/`), its ETags are the MD5 of the whole object even for
multipart uploads, it keeps no checksums and ignores `partNumber`. It always checks signatures
(key `S3RVER`, secret `S3RVER`) and lets anonymous requests through.

It is installed with npm into `.testbed/s3rver/` of the checkout when missing (scripts/test
does it during set-up; `python -m tests.peers.s3rver` does only that). Node 17 and later need
OpenSSL's legacy provider for the cipher s3rver uses in continuation tokens.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from .procs import start, stop, wait_until

VERSION = "3.7.1"
ROOT = Path(__file__).resolve().parents[2]
INSTALL_DIR = ROOT / ".testbed" / "s3rver"
REGION = "us-east-1"
KEY = "S3RVER"


def installed(folder: Path = INSTALL_DIR) -> Path | None:
    """s3rver's entry point if this version is installed in `folder`."""
    package = folder / "node_modules" / "s3rver"
    try:
        version = json.loads((package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    entry = package / "bin" / "s3rver.js"
    return entry if version == VERSION and entry.exists() else None


def install(folder: Path = INSTALL_DIR) -> Path:
    """Install s3rver@VERSION with npm into `folder` unless it is there; its entry point."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions in one checkout install it once
        entry = installed(folder)
        if entry is not None:
            return entry
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise RuntimeError("s3rver needs Node.js and npm (apt-get install nodejs npm)")
        result = subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(folder),
                "--no-audit",
                "--no-fund",
                "--no-save",
                f"s3rver@{VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        entry = installed(folder)
        if result.returncode != 0 or entry is None:
            raise RuntimeError(
                f"npm install s3rver@{VERSION} into {folder} failed:\n{result.stderr[-2000:]}"
            )
        return entry


class S3rverPeer:
    name = "s3rver"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = ""
        self.access_key = KEY
        self.secret_key = KEY
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> S3rverPeer:
        entry = install()
        data, log = self.root / "data", self.root / "s3rver.log"
        data.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "NODE_OPTIONS": "--openssl-legacy-provider"}
        command = ["node", str(entry), "--directory", str(data), "--address", "127.0.0.1"]
        command += ["--port", "0", "--no-vhost-buckets"]
        self._process = start(command, log, env=env)
        wait_until(lambda: self._listening(log), 30, "s3rver", log)
        return self

    def _listening(self, log: Path) -> bool:
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if found is None:
            return False
        self.url = f"http://127.0.0.1:{found.group(1)}"
        with urllib.request.urlopen(f"{self.url}/", timeout=2) as response:
            return bool(response.status == 200)

    @contextlib.contextmanager
    def authentication(self) -> Iterator[None]:
        """s3rver always checks keys (as moto does only within its own such block)."""
        yield

    def iam(self) -> dict[str, str]:
        """The `IAM` block of an S3 resource with this peer's valid keys."""
        return {"REGION": REGION, "ACCESS_KEY_ID": KEY, "SECRET_ACCESS_KEY": KEY}

    def operator_env(self) -> dict[str, str]:
        """The same keys as the operator's `s3.*` settings."""
        return {
            "NOSANA_CACHE_S3__ACCESS_KEY_ID": KEY,
            "NOSANA_CACHE_S3__SECRET_ACCESS_KEY": KEY,
            "NOSANA_CACHE_S3__REGION": REGION,
        }

    def client(self, **overrides: Any) -> Any:
        """A boto3 client with the valid keys (what a user would run by hand)."""
        options: dict[str, Any] = {
            "endpoint_url": self.url,
            "region_name": REGION,
            "aws_access_key_id": KEY,
            "aws_secret_access_key": KEY,
            "config": Config(s3={"addressing_style": "path"}),
        }
        options.update(overrides)
        return boto3.client("s3", **options)

    def bucket(self, name: str, objects: dict[str, bytes], *, public: bool = False) -> None:
        """Create `name` with `objects` (key → bytes); every object is public on s3rver."""
        client = self.client()
        client.create_bucket(Bucket=name)
        for key, data in objects.items():
            client.put_object(Bucket=name, Key=key, Body=data)

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process)


if __name__ == "__main__":
    print(install(Path(sys.argv[1]) if len(sys.argv) > 1 else INSTALL_DIR))
