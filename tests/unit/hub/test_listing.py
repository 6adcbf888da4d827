"""The listing document: upstream's answers kept as they were, minus what a mirror must not
pass on (Xet), and never a name that would leave a view."""

from __future__ import annotations

import pytest

from daemon.errors import UnsafeUpstream, UpstreamError
from daemon.sources.hub_listing import Lfs, Listing, RepoRef
from tests.unit.hub.listings import COMMIT, SHA, listing, tree


def test_a_listing_survives_its_document_and_drops_xet_and_siblings() -> None:
    kept = listing(cardData={"license": "mit"}, xetEnabled=True)
    again = Listing.from_bytes(kept.to_bytes())
    assert again == kept
    assert again.info["cardData"] == {"license": "mit"}
    assert "siblings" not in again.info
    assert "xetEnabled" not in again.info
    assert all("xetHash" not in entry.raw for entry in again.entries)
    assert [e.path for e in again.files] == [
        "config.json",
        "model.safetensors",
        "tokenizer/special/tokens.txt",
        "tokenizer/tokenizer.json",
    ]


def test_a_files_digests_and_etag_come_from_lfs_or_git() -> None:
    kept = listing()
    weights, config = kept.file("model.safetensors"), kept.file("config.json")
    assert weights is not None
    assert config is not None
    assert weights.expected.sha256 == SHA
    assert weights.etag == SHA
    assert config.expected.git_sha1 == "1" * 40
    assert config.etag == "1" * 40
    assert kept.file("tokenizer") is None  # a folder is not a file
    assert kept.entry("tokenizer") is not None


@pytest.mark.parametrize("path", ["../escape", "/etc/passwd", "a//b", "a/./b"])
def test_names_that_would_leave_a_view_are_refused(path: str) -> None:
    hostile = [*tree(), {"type": "file", "oid": "7" * 40, "size": 1, "path": path}]
    with pytest.raises(UnsafeUpstream):
        Listing.of(RepoRef("model", "org/model"), COMMIT, {}, hostile)


def test_an_entry_of_no_known_type_is_refused() -> None:
    with pytest.raises(UpstreamError, match="does not describe"):
        Listing.of(RepoRef("model", "o/m"), COMMIT, {}, [{"type": "link", "path": "x"}])


def test_gated_and_private_are_read_from_the_repo_info() -> None:
    assert not listing().gated
    assert listing(gated="manual").gated
    assert listing(gated="auto").gated
    assert listing(private=True).private


def test_a_repo_is_public_only_when_upstream_says_it_is_neither_private_nor_gated() -> None:
    assert listing().public
    assert not listing(private=True).public
    assert not listing(gated="manual").public
    assert not listing(private=None).public  # says nothing: not public
    no_word = Listing.of(RepoRef("model", "org/model"), COMMIT, {"sha": COMMIT}, tree())
    assert not no_word.public


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "file", "path": "a.bin", "oid": "7" * 40},  # no size
        {"type": "file", "path": "a.bin", "oid": "7" * 40, "size": -1},
        {"type": "file", "path": "a.bin", "oid": "7" * 40, "size": "many"},
        {"type": "file", "path": "a.bin", "size": 1},  # no blob id
    ],
)
def test_a_file_without_a_size_or_blob_id_is_refused(broken: dict[str, object]) -> None:
    with pytest.raises(UpstreamError, match=r"a\.bin"):
        Listing.of(RepoRef("model", "o/m"), COMMIT, {}, [broken])


def test_an_entry_keeps_upstreams_object_for_the_answers_and_types_what_is_read() -> None:
    weights = listing().file("model.safetensors")
    assert weights is not None
    assert weights.lfs == Lfs(sha256=SHA, size=1000, pointer_size=132)
    assert (weights.size, weights.oid, weights.type) == (1000, "6" * 40, "file")
    assert weights.raw == {k: v for k, v in tree()[5].items() if k != "xetHash"}
