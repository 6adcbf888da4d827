"""Tree and paths-info answers from a listing, paged as the Hub pages."""

from __future__ import annotations

from daemon.hub import tree as trees
from daemon.sources.hub_listing import ListedEntry, RepoRef
from tests.unit.hub.listings import listing


def paths(entries: list[ListedEntry] | None) -> list[str]:
    assert entries is not None
    return [e.path for e in entries]


def test_a_folder_lists_its_children_or_everything_below() -> None:
    kept = listing()
    assert paths(trees.under(kept, "", recursive=False)) == [
        "config.json",
        "model.safetensors",
        "tokenizer",
    ]
    assert paths(trees.under(kept, "tokenizer", recursive=False)) == [
        "tokenizer/special",
        "tokenizer/tokenizer.json",
    ]
    assert len(paths(trees.under(kept, "", recursive=True))) == 6
    assert trees.under(kept, "absent", recursive=True) is None
    assert trees.under(kept, "config.json", recursive=True) is None  # a file is no folder


def test_pages_follow_each_other_to_the_end() -> None:
    repo = RepoRef("model", "org/model")
    entries = [
        ListedEntry.of({"type": "file", "oid": "0" * 40, "size": 1, "path": f"f{i:04}"}, repo)
        for i in range(2500)
    ]
    seen, cursor = [], None
    while True:
        chosen, following = trees.page(entries, cursor)
        seen += [e.path for e in chosen]
        if following is None:
            break
        cursor = str(following)
    assert seen == [e.path for e in entries]
    assert trees.page(entries, "junk")[0][0].path == "f0000"  # a cursor we did not give: start
    assert trees.page(entries, "²")[0][0].path == "f0000"  # a digit to str.isdigit, not to us
    assert trees.page(entries, "9" * 5000) == ([], None)  # past every listing, not int()'d
    assert trees.page(entries, "0" * 5000 + "1000")[0][0].path == "f1000"


def test_paths_info_gives_what_exists_in_the_order_asked() -> None:
    found = trees.paths_info(listing(), ["tokenizer/", "absent", "config.json", "tokenizer"])
    assert [(e.path, e.type) for e in found] == [
        ("tokenizer", "directory"),
        ("config.json", "file"),
    ]
