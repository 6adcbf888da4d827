"""The site store's manifests: what a node writes reads back the same, and anything off is
refused rather than trusted."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from daemon.errors import UpstreamIntegrityError
from daemon.site.layout import CHUNK, Layout, SiteFile, SiteManifest
from daemon.site.pushing import _Digests
from daemon.util.limits import ENTRY_FILES, SITE_MANIFEST_BYTES

IDENTITY = '{"repo":"a/b","type":"HF"}'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(*files: SiteFile) -> SiteManifest:
    return SiteManifest(
        identity=IDENTITY,
        type="hf",
        source="hf://a/b@main",
        version="c0ffee",
        entry_id="0" * 32,
        first_downloaded_at=1_800_000_000.5,
        files=files,
        details={"commit": "c0ffee"},
        written_by="node-1",
    )


def test_a_manifest_reads_back_as_written() -> None:
    big = SiteFile(
        "m.bin", 2 * CHUNK + 1, sha(b"x"), False, CHUNK, (sha(b"1"), sha(b"2"), sha(b"3"))
    )
    small = SiteFile("run.sh", 10, sha(b"y"), True)
    written = manifest(big, small)
    assert SiteManifest.from_json(written.to_json(), identity=IDENTITY, where="k") == written
    assert big.pieces() == [(0, CHUNK), (CHUNK, 2 * CHUNK), (2 * CHUNK, 2 * CHUNK + 1)]
    assert small.pieces() == [(0, 10)]
    assert written.fresh(1_800_000_000.5 + 10, ttl=11)
    assert not written.fresh(1_800_000_000.5 + 11, ttl=11)


def test_a_manifest_is_written_in_the_format_nodes_read() -> None:
    """Compact JSON, keys sorted; chunk digests only for a file of more than one piece."""
    big = SiteFile("m.bin", CHUNK + 1, sha(b"x"), False, CHUNK, (sha(b"1"), sha(b"2")))
    written = manifest(big, SiteFile("run.sh", 10, sha(b"y"), True))
    body = {
        "format": 1,
        "identity": IDENTITY,
        "type": "hf",
        "source": "hf://a/b@main",
        "version": "c0ffee",
        "entry_id": "0" * 32,
        "first_downloaded_at": 1_800_000_000.5,
        "details": {"commit": "c0ffee"},
        "written_by": "node-1",
        "files": [
            {
                "path": "m.bin",
                "size": CHUNK + 1,
                "sha256": sha(b"x"),
                "executable": False,
                "chunk_size": CHUNK,
                "chunks": [sha(b"1"), sha(b"2")],
            },
            {"path": "run.sh", "size": 10, "sha256": sha(b"y"), "executable": True},
        ],
    }
    assert written.to_json() == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _broken(change: Any) -> bytes:
    body = json.loads(manifest(SiteFile("a", 3, sha(b"abc"))).to_json())
    change(body)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.update(identity='{"repo":"other/repo","type":"HF"}'),
        lambda b: b.update(format=2),
        lambda b: b["files"].append(dict(b["files"][0])),
        lambda b: b["files"][0].update(sha256="not-hex"),
        lambda b: b["files"][0].update(size=-1),
        lambda b: b["files"][0].update(size=3 * CHUNK, chunk_size=CHUNK, chunks=[sha(b"1")]),
        lambda b: b["files"][0].update(size=3 * CHUNK, chunk_size=1, chunks=[sha(b"1")] * 3),
        lambda b: b.update(entry_id="../../x"),
        lambda b: b["files"][0].update(path="../../etc/x"),
        lambda b: b["files"][0].update(path="/etc/x"),
        lambda b: b["files"][0].update(size=CHUNK + 1),  # big, without chunk digests
        lambda b: b["files"][0].update(size=2**62, chunk_size=CHUNK, chunks=[sha(b"1")]),
        lambda b: b["files"].extend(
            {"path": f"f{i}", "size": 1, "sha256": sha(b"1")} for i in range(ENTRY_FILES.limit)
        ),
        lambda b: b.update(files={"a": 1}),
        lambda b: b.pop("version"),
    ],
)
def test_a_manifest_that_is_off_is_refused(change: Any) -> None:
    with pytest.raises(UpstreamIntegrityError):
        SiteManifest.from_json(_broken(change), identity=IDENTITY, where="k")


def test_a_manifest_past_its_bound_in_bytes_is_refused_unread() -> None:
    with pytest.raises(UpstreamIntegrityError, match=r"site\.manifest_bytes"):
        SiteManifest.from_json(b" " * (SITE_MANIFEST_BYTES.limit + 1), identity=None, where="k")


def test_what_is_not_a_manifest_at_all_is_refused() -> None:
    with pytest.raises(UpstreamIntegrityError):
        SiteManifest.from_json(b"{not json", identity=None, where="k")
    with pytest.raises(UpstreamIntegrityError):
        SiteManifest.from_json(b"[]", identity=None, where="k")


def test_keys_sit_under_the_prefix() -> None:
    layout = Layout("cache/")
    assert layout.blob("ab" * 32) == "cache/blobs/sha256/" + "ab" * 32
    assert layout.manifest("rk", "e1", 1_800_000_000.7) == "cache/manifests/rk/e1.1800000000.json"
    assert layout.manifest("rk", "e1", 1).startswith(layout.entry_manifests("rk", "e1"))
    assert layout.marker("rk") == "cache/fetching/rk"
    assert layout.blob_digest("cache/blobs/sha256/" + "ab" * 32) == "ab" * 32
    assert layout.blob_digest("cache/blobs/sha256/nothex") is None
    assert Layout("").blob("c" * 64) == "blobs/sha256/" + "c" * 64


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK - 7])
def test_chunk_digests_follow_the_bytes_however_they_are_cut(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    digests = _Digests(size)
    for start in range(0, size, 3_000_001):  # pieces that straddle chunk boundaries
        digests.update(data[start : start + 3_000_001])
    whole, (chunk_size, chunks) = digests.finish()
    assert whole == sha(data)
    expected = [sha(data[s : s + CHUNK]) for s in range(0, size, CHUNK)] if size > CHUNK else []
    assert list(chunks) == expected
    assert chunk_size == CHUNK
