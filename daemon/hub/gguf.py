"""Which GGUF file of a repo a quantization tag names, as the Hub's manifests for llama.cpp
say (`GET /v2/{repo}/manifests/{tag}`, asked by llama.cpp's `-hf org/repo[:quant]` before it
listed repos itself).

The rules are llama.cpp's own (common/download.cpp, `find_best_model`), which read the Hub's:
a model file is a `.gguf` whose name holds none of `mmproj`, `imatrix` and the speculative
decoding sidecars; a tag matches a file whose path has the tag followed by `.` or `-`, any case;
of a split model (`-00001-of-00003.gguf`) only the first part is named. No tag (`latest`)
means Q4_K_M, else Q8_0, else the first model file. The vision projector (`mmprojFile`) is
the `mmproj` file beside the model whose quantization bits are nearest to the model's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..sources.hub_listing import ListedEntry

DEFAULT_TAGS = ("Q4_K_M", "Q8_0")
LATEST = "latest"
_SIDECARS = ("mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-")
_SPLIT = re.compile(r"^(.+)-([0-9]{5})-of-([0-9]{5})$", re.IGNORECASE)
_QUANT = re.compile(r"[-.]([A-Z0-9_]+)$", re.IGNORECASE)


def choose(files: Sequence[ListedEntry], tag: str) -> tuple[ListedEntry, ListedEntry | None]:
    """The model file and its projector (or None) that `tag` names; `LookupError` with the
    tags the repo has when it names none."""
    asked = "" if tag.lower() == LATEST else tag
    model = _best_model(files, asked)
    if model is None:
        have = sorted({q for f in files if _is_model(f) and (q := quant_of(f.path))})
        if asked:
            raise LookupError(f"no GGUF file with the tag {tag!r}; the repo has {have or 'none'}")
        raise LookupError("the repo has no GGUF model file")
    return model, _best_projector(files, model.path)


def quant_of(path: str) -> str:
    """The quantization tag of a GGUF file's name (`Q4_K_M`), upper case; "" if none."""
    stem = path[: -len(".gguf")] if path.endswith(".gguf") else ""
    if split := _SPLIT.match(stem):
        stem = split.group(1)
    found = _QUANT.search(stem)
    return found.group(1).upper() if found else ""


def _best_model(files: Sequence[ListedEntry], tag: str) -> ListedEntry | None:
    for wanted in (tag,) if tag else DEFAULT_TAGS:
        pattern = re.compile(re.escape(wanted) + r"[.-]", re.IGNORECASE)
        for file in files:
            if _is_model(file) and _first_part(file) and pattern.search(file.path):
                return file
    if tag:
        return None
    return next((f for f in files if _is_model(f) and _first_part(f)), None)


def _best_projector(files: Sequence[ListedEntry], model: str) -> ListedEntry | None:
    folder = model.rpartition("/")[0]
    bits = _bits(quant_of(model))
    found = [
        f
        for f in files
        if f.path.endswith(".gguf") and "mmproj" in f.path and f.path.rpartition("/")[0] == folder
    ]
    return min(found, key=lambda f: abs(_bits(quant_of(f.path)) - bits), default=None)


def _is_model(file: ListedEntry) -> bool:
    path = file.path
    name = path.rpartition("/")[2]
    return path.endswith(".gguf") and not any(word in name for word in _SIDECARS)


def _first_part(file: ListedEntry) -> bool:
    split = _SPLIT.match(file.path[: -len(".gguf")])
    return split is None or int(split.group(2)) == 1


def _bits(quant: str) -> int:
    digits = re.search(r"[0-9]+", quant)
    return int(digits.group()) if digits else 0
