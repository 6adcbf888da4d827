"""A site manifest that fails any check is passed over for upstream on the same request, with a
`site.*` warning, and distrusted until the daemon restarts (issue 25): a path outside the entry
(which failed every node's first request with 400 "Refused unsafe upstream"), more files than
`entry.files`, more bytes than `site.manifest_bytes` (not even read), digests and sizes that do
not add up."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.resources import HFResource, parse_resource
from daemon.site.layout import CHUNK
from daemon.util.limits import ENTRY_FILES, SITE_MANIFEST_BYTES
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.peers.s3 import S3Peer
from tests.site_nodes import new_bucket, node, site_env, site_objects

MB = 1024 * 1024
SHA = "ab" * 32


def _path(value: str) -> Callable[[dict[str, Any]], None]:
    return lambda m: m["files"][0].update(path=value)


def _many_files(manifest: dict[str, Any]) -> None:
    manifest["files"] += [
        {"path": f"extra/{i}", "size": 1, "sha256": SHA, "executable": False}
        for i in range(ENTRY_FILES.limit)
    ]


def _padded(manifest: dict[str, Any]) -> None:
    manifest["details"]["padding"] = "x" * SITE_MANIFEST_BYTES.limit


DAMAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "a path out of the entry": _path("../../etc/x"),
    "an absolute path": _path("/etc/x"),
    "a path through ..": _path("sub/../../x"),
    "a path differing only by case": lambda m: m["files"].append(
        m["files"][0] | {"path": m["files"][0]["path"].upper()}
    ),
    "more files than entry.files": _many_files,
    "more bytes than site.manifest_bytes": _padded,
    "a digest that is not one": lambda m: m["files"][0].update(sha256="zz" * 32),
    "a big file without chunk digests": lambda m: m["files"][0].update(size=CHUNK + 1),
    "chunks that do not add up to the size": lambda m: m["files"][0].update(
        size=2**60, chunk_size=CHUNK, chunks=[SHA]
    ),
}


def hf(repo: str) -> HFResource:
    resource = parse_resource({"type": "HF", "repo": repo})
    assert isinstance(resource, HFResource)
    return resource


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
async def test_a_damaged_manifest_is_passed_over_for_upstream_and_distrusted(
    damage: str, tmp_path: Path, hub: FakeHub, s3: S3Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = f"site/bounds-{abs(hash(damage)) % 10**8}"
    hub.commit(repo, {"config.json": b'{"a": 1}', "w.bin": Content.generated(MB, seed=2501)})
    bucket = new_bucket(s3)
    env = site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}
    async with node(tmp_path / "a", env) as a:
        first = await a.cache.acquire(hf(repo), holder="t")
        await a.uploaded()
    [(key, body)] = site_objects(s3, bucket, "manifests/").items()
    manifest = json.loads(body)
    manifest["files"].sort(key=lambda f: f["path"])
    DAMAGES[damage](manifest)
    s3.client().put_object(Bucket=bucket, Key=f"nodes/{key}", Body=json.dumps(manifest).encode())
    capsys.readouterr()
    hub_calls = hub.traffic.total()
    async with node(tmp_path / "b", env) as b:
        second = await b.cache.acquire(hf(repo), holder="t")  # the same request: no error
        assert second.entry.version == first.entry.version
        assert b.site.counters.manifest_hits == 0
        assert b.site.counters.bytes_from_site == 0
        assert hub.traffic.total() > hub_calls  # from upstream
        assert f"nodes/{key}" in b.site.manifests.distrusted
        assert second.view is not None
        assert (second.view / "config.json").read_bytes() == b'{"a": 1}'
        assert not (tmp_path / "b" / "etc").exists()
        again = hub.traffic.total()
        await b.cache.acquire(hf(repo), holder="t2")  # ready here now: neither asked
        assert hub.traffic.total() == again
    logged = capsys.readouterr().out
    assert "site.manifest_unusable" in logged
