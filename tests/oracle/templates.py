"""Equivalents of Nosana's public job templates, for the conformance corpus.

`nosana-ci/pipeline-templates` publishes no licence, so its job definitions are not copied
into this repository. What the conformance test needs from them is their shape: which
properties they use, where they put `%%global.variables.X%%` literals, which characters their
op ids hold, their ports and health checks. `skeleton()` keeps exactly that and replaces the
authors' own text (images, commands, environment, URLs, repos, paths, request bodies) with
neutral values of the same kind: an absolute path stays absolute, a whole literal stays a
whole literal, an op id keeps its punctuation.

    python -m tests.oracle.templates GIT_DIR OUT_DIR   # GIT_DIR: the repository's git dir
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

_VARIABLE = re.compile(r"%%global\.variables\.([^%]+)%%")
_KEPT = {"version", "type", "method", "trigger", "continuous", "expected_status", "gpu"}
_KEPT |= {"allowWrite", "private", "revision", "port"}


class _Neutral:
    """Neutral values, numbered in the order they are needed, per document."""

    def __init__(self, variables: list[str]) -> None:
        self.variables = {name: f"VAR_{i + 1}" for i, name in enumerate(variables)}
        self.count = 0

    def number(self) -> int:
        self.count += 1
        return self.count

    def literals(self, text: str) -> list[str]:
        return [f"%%global.variables.{self.variables.get(n, n)}%%" for n in _VARIABLE.findall(text)]

    def text(self, original: str, stem: str) -> str:
        """`stem-N`, followed by the original's literals; a whole literal stays whole."""
        found = self.literals(original)
        if len(found) == 1 and _VARIABLE.fullmatch(original):
            return found[0]
        return " ".join([f"{stem}-{self.number()}", *found])

    def path(self, original: str, stem: str) -> str:
        if _VARIABLE.fullmatch(original):
            return self.text(original, stem)
        lead = "/" if original.startswith("/") else ""
        tail = "/" if original.endswith("/") and len(original) > 1 else ""
        return f"{lead}{stem}-{self.number()}{tail}"


def op_id_shape(op_id: str) -> str:
    """Letters become `a`, digits `1`; punctuation (`:`, `-`, `.`, `/`...) stays."""
    return re.sub(r"[0-9]", "1", re.sub(r"[^\W\d_]", "a", op_id))


def skeleton(document: dict[str, Any]) -> dict[str, Any]:
    variables = list((document.get("global") or {}).get("variables") or {})
    neutral = _Neutral(variables)
    out: dict[str, Any] = _walk(document, (), neutral)
    ids: dict[str, str] = {}
    for op in out.get("ops", []):
        shaped = op_id_shape(op["id"])
        while shaped in ids.values():  # two ids of one shape stay two ids
            shaped += "1"
        ids[op["id"]] = shaped
        op["id"] = shaped
    for op in out.get("ops", []):
        depends = (op.get("execution") or {}).get("depends_on")
        if depends:
            op["execution"]["depends_on"] = [ids.get(d, d) for d in depends]
    return out


def _walk(value: Any, path: tuple[str, ...], neutral: _Neutral) -> Any:
    if isinstance(value, dict):
        return _walk_object(value, path, neutral)
    if isinstance(value, list):
        return [_walk(item, (*path, "[]"), neutral) for item in value]
    if not isinstance(value, str):
        return value
    return _neutral_string(value, path, neutral)


def _walk_object(value: dict[str, Any], path: tuple[str, ...], neutral: _Neutral) -> Any:
    parent = path[-1] if path else ""
    if parent == "meta":
        return value  # Nosana's dashboard vocabulary and numbers: facts, not text
    out: dict[str, Any] = {}
    for position, (key, item) in enumerate(value.items()):
        if parent == "variables":
            out[neutral.variables[key]] = _variable_value(item, neutral)
        elif parent in ("env", "headers"):
            out[f"{parent.upper()}_{position + 1}"] = _walk(item, (*path, key), neutral)
        else:
            out[key] = _walk(item, (*path, key), neutral)
    return out


def _variable_value(value: Any, neutral: _Neutral) -> Any:
    if isinstance(value, str) and re.fullmatch(r"[\w.-]+:[\w.-]+", value):
        return f"model-{neutral.number()}:tag"  # an Ollama model: stays one
    return f"value-{neutral.number()}" if isinstance(value, str) else value


def _neutral_string(value: str, path: tuple[str, ...], neutral: _Neutral) -> str:
    key = next((p for p in reversed(path) if p != "[]"), "")
    if key in _KEPT or key == "id":
        return value
    if key in ("work_dir", "target", "dest", "path"):
        return neutral.path(value, key.replace("_", "-"))
    if key == "image":
        return f"example.invalid/image-{neutral.number()}:1.0"
    if key == "model" and not _VARIABLE.fullmatch(value):
        return f"model-{neutral.number()}:tag"
    if key == "repo":
        number = neutral.number()
        return f"org-{number}/repo-{number}"
    if key == "files":
        return "/".join(["dir"] * value.count("/") + [f"file-{neutral.number()}.bin"])
    if key == "url":
        scheme = "s3://bucket" if value.startswith("s3://") else "https://models.example.invalid"
        return f"{scheme}/prefix-{neutral.number()}"
    if key == "body":
        return json.dumps({"probe": neutral.number()})
    return neutral.text(value, {"cmd": "arg", "entrypoint": "arg"}.get(key, "value"))


def main(git_dir: str, out_dir: str) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", git_dir, *args], capture_output=True, text=True, check=True
        ).stdout

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in git("ls-tree", "-r", "--name-only", "HEAD").splitlines():
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "templates" or not parts[2].startswith("job-def"):
            continue
        document = json.loads(git("show", f"HEAD:{name}"))
        target = out / f"{parts[1]}__{parts[2]}"
        target.write_text(json.dumps(skeleton(document), indent=2) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
