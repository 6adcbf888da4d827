"""Hostile file names in an upstream listing (a repo on the hub names them; the daemon lists
the repo and must refuse before fetching or writing anything).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.errors import UnsafeUpstream
from daemon.resources import HFResource, parse_resource
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.integration.conftest import CacheFactory

HOSTILE: dict[str, list[str]] = {
    "parent": ["../../etc/passwd"],
    "parent-inside": ["models/../../../etc/passwd"],
    "absolute": ["/etc/passwd"],
    "nul": ["weights\x00.bin"],
    "newline": ["config\n.json"],
    "deep": ["d/" * 10_000 + "f.bin"],
    "long-name": ["x" * 300 + ".bin"],
    "case-twins": ["Model.safetensors", "model.safetensors"],
    "case-folders": ["Sub/a.json", "sub/b.json"],
    "file-and-folder": ["tokenizer", "tokenizer/vocab.json"],
}


def hf(repo: str) -> HFResource:
    resource = parse_resource({"type": "HF", "repo": repo})
    assert isinstance(resource, HFResource)
    return resource


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_a_hostile_listing_is_refused_before_anything_is_fetched(
    tmp_path: Path, hub: FakeHub, make_cache: CacheFactory, case: str
) -> None:
    repo = f"hostile/{case}"
    files: dict[str, bytes | Content] = dict.fromkeys(HOSTILE[case], b"evil")
    files["README.md"] = b"# fine\n"
    hub.commit(repo, files)
    before = hub.traffic.total(f"GET /{repo}/resolve/") + hub.cdn_traffic.total()
    async with make_cache(hub=hub) as cache:
        with pytest.raises(UnsafeUpstream, match="refused file name") as refused:
            await cache.acquire(hf(repo), holder="t")
        assert await cache.store.entries() == []
        assert list(cache.store.paths.blobs.glob("*/*")) == []
        assert list(cache.store.views.root.iterdir()) == []
    assert hub.traffic.total(f"GET /{repo}/resolve/") + hub.cdn_traffic.total() == before
    assert "\n" not in str(refused.value).replace("\\n", "")  # one line, names escaped
    assert not await asyncio.to_thread(lambda: list(tmp_path.rglob("passwd")))
