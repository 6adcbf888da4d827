"""The GGUF file a quantization tag names (llama.cpp's rules, which the Hub's manifests follow)."""

from __future__ import annotations

import pytest

from daemon.hub.gguf import choose, quant_of
from daemon.sources.hub_listing import ListedEntry, RepoRef


def files(*paths: str) -> list[ListedEntry]:
    repo = RepoRef("model", "org/model")
    return [
        ListedEntry.of({"type": "file", "path": p, "size": 1, "oid": "0" * 40}, repo) for p in paths
    ]


REPO = files(
    "README.md",
    "imatrix-Q4_K_M.gguf",
    "sub/x-Q4_K_M.gguf",
    "x-IQ4_XS.gguf",
    "x-Q4_K_M-00002-of-00002.gguf",
    "x-Q4_K_M-00001-of-00002.gguf",
    "x.Q8_0.gguf",
    "mmproj-x-f16.gguf",
    "sub/mmproj-x-Q8_0.gguf",
    "mtp-x-Q4_K_M.gguf",
)


@pytest.mark.parametrize(
    ("tag", "model", "projector"),
    [
        ("latest", "sub/x-Q4_K_M.gguf", "sub/mmproj-x-Q8_0.gguf"),  # first in order, same dir
        ("q8_0", "x.Q8_0.gguf", "mmproj-x-f16.gguf"),  # `.` before the tag, any case
        ("IQ4_XS", "x-IQ4_XS.gguf", "mmproj-x-f16.gguf"),
    ],
)
def test_a_tag_names_a_model_file_and_its_projector(tag: str, model: str, projector: str) -> None:
    chosen, mmproj = choose(REPO, tag)
    assert chosen.path == model
    assert mmproj is not None
    assert mmproj.path == projector


def test_a_split_model_is_named_by_its_first_part_and_sidecars_never() -> None:
    chosen, mmproj = choose(
        files("a-Q4_K_M-00002-of-00002.gguf", "a-Q4_K_M-00001-of-00002.gguf"), ""
    )
    assert chosen.path == "a-Q4_K_M-00001-of-00002.gguf"
    assert mmproj is None
    with pytest.raises(LookupError, match="no GGUF model file"):
        choose(files("mmproj-a-f16.gguf", "imatrix.gguf", "README.md"), "latest")


def test_no_default_tag_falls_back_to_the_first_model_and_a_missing_tag_lists_the_others() -> None:
    chosen, _ = choose(files("b-F16.gguf", "a-Q5_K_S.gguf"), "latest")
    assert chosen.path == "b-F16.gguf"
    with pytest.raises(LookupError, match=r"'Q2_K'.*\['F16', 'Q5_K_S'\]"):
        choose(files("b-F16.gguf", "a-Q5_K_S.gguf"), "Q2_K")


def test_quant_of_reads_the_tag_of_a_name() -> None:
    assert quant_of("dir/Model-7B-q4_k_m-00001-of-00003.gguf") == "Q4_K_M"
    assert quant_of("model.gguf") == ""
    assert quant_of("model.bin") == ""
