"""Building blocks of the conformance corpus: named cases and small document builders."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "nosana-templates"


@dataclass(frozen=True)
class Case:
    name: str
    document: Any


def job(*ops: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": "0.1", "type": "container", "ops": list(ops), **top}


def run(op_id: str = "run", **args: Any) -> dict[str, Any]:
    return {"type": "container/run", "id": op_id, "args": {"image": "busybox:1", **args}}


def volume(op_id: str = "make", name: str = "cache") -> dict[str, Any]:
    return {"type": "container/create-volume", "id": op_id, "args": {"name": name}}


def http_check(**fields: Any) -> dict[str, Any]:
    check = {"type": "http", "path": "/", "method": "GET", "expected_status": 200}
    return {**check, "continuous": False, **fields}


def template(name: str) -> dict[str, Any]:
    """One of the template equivalents in tests/data/nosana-templates, by file stem."""
    loaded: dict[str, Any] = json.loads((TEMPLATES / f"{name}.json").read_text())
    return loaded


def templates() -> list[Case]:
    return [
        Case(f"template/{path.stem}", json.loads(path.read_text()))
        for path in sorted(TEMPLATES.glob("*.json"))
    ]


def changed(document: Any, change: Callable[[Any], Any]) -> Any:
    """A changed deep copy: `change` edits the copy in place (or returns a replacement)."""
    copied = copy.deepcopy(document)
    replaced = change(copied)
    return copied if replaced is None else replaced


def args_of(document: dict[str, Any], index: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = document["ops"][index]["args"]
    return found


def whole(document: Any) -> Any:
    return document


def first_op(document: Any) -> dict[str, Any]:
    found: dict[str, Any] = document["ops"][0]
    return found


def put(find: Callable[[Any], Any], key: str, value: Any) -> Callable[[Any], None]:
    """A change for `changed`: `find(document)[key] = value`."""

    def change(document: Any) -> None:
        find(document)[key] = value

    return change
