"""Which pull a request belongs to, and bytes by source, without a server: the tallies are
driven as the routes and the counting resolvers drive them."""

from __future__ import annotations

import json

from daemon.registry.pulls import Pulls
from daemon.sources.registry import Repository

UBUNTU = Repository("docker.io", "library/ubuntu")
INDEX, AMD64, CONFIG, LAYER = (f"sha256:{c * 64}" for c in "abcd")


def _index() -> bytes:
    return json.dumps({"manifests": [{"digest": AMD64}, {"digest": "sha256:" + "e" * 64}]}).encode()


def _manifest() -> bytes:
    return json.dumps({"config": {"digest": CONFIG}, "layers": [{"digest": LAYER}]}).encode()


def test_an_index_its_platform_manifest_and_blobs_are_one_pull() -> None:
    pulls = Pulls()
    tally = pulls.manifest(UBUNTU, "24.04", private=False)
    pulls.served_manifest(tally, INDEX, _index())
    tally.fetched_bytes(300, upstream=True)
    tally.sent_bytes(300)
    tally.done()
    platform = pulls.manifest(UBUNTU, AMD64, private=False)
    pulls.served_manifest(platform, AMD64, _manifest())
    platform.done()
    layer = pulls.blob(UBUNTU, LAYER, private=False)
    layer.fetched_bytes(1000, upstream=False)  # the site store's resolver wrote it
    layer.sent_bytes(1000)
    assert pulls.pulls()[0].reading == 1
    layer.done()
    [pull] = pulls.pulls()
    assert pull.image == "docker.io/library/ubuntu:24.04"
    assert pull.digest == INDEX
    assert pull.blobs == 1
    assert pull.reading == 0
    assert pull.bytes_from == {"upstream": 300, "site": 1000}
    assert pull.bytes_sent == 1300


def test_bytes_the_fetch_did_not_bring_count_as_the_stores() -> None:
    pulls = Pulls()
    pulls.manifest(UBUNTU, "latest", private=False).done()
    hit = pulls.blob(UBUNTU, LAYER, private=False)
    hit.sent_bytes(4096)
    hit.done()
    # Through the site store's resolver, upstream's bytes pass both counters: upstream's.
    miss = pulls.blob(UBUNTU, CONFIG, private=False)
    miss.fetched_bytes(100, upstream=True)
    miss.fetched_bytes(100, upstream=False)
    miss.sent_bytes(100)
    miss.done()
    assert pulls.totals == {"upstream": 100, "site": 0, "store": 4096}


def test_a_digest_nothing_named_starts_its_own_pull_and_only_the_newest_are_kept() -> None:
    pulls = Pulls(recent=3)
    pulls.blob(UBUNTU, LAYER, private=False).done()
    assert pulls.pulls()[0].image == f"docker.io/library/ubuntu@{LAYER}"
    pulls.manifest(UBUNTU, "latest", private=True).done()
    assert pulls.pulls()[0].private  # a private pull never takes a public one's requests
    pulls.blob(UBUNTU, CONFIG, private=False).done()
    assert [p.blobs for p in pulls.pulls()] == [0, 2]  # the public pull of that repository
    for tag in ("a", "b", "c"):
        pulls.manifest(UBUNTU, tag, private=False).done()
    assert [p.reference for p in pulls.pulls()] == ["c", "b", "a"]
