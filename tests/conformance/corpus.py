"""The whole conformance corpus: Nosana's templates (their equivalents), every shape of
`@nosana/types`' type definitions, named variations, and seeded random combinations.

The combinations draw from changes on which the two validators are meant to agree (none of
the deliberate differences), so that every case in `differences.py` is one written by name.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .documents import Case, args_of, changed, http_check, templates
from .mistakes import mistakes
from .shapes import shapes
from .structure import structure
from .variations import EXPOSE, OP_IDS, variations

SEED = 16
COMBINATIONS = 150

_AGREEING_EXPOSE = [
    value
    for label, value in EXPOSE.items()
    if not label.startswith(("port-0", "port-negative", "port-65536", "port-fraction"))
    and "variable" not in label
]
_RESOURCES: list[Any] = [
    {"type": "Ollama", "model": "qwen3:0.6b"},
    {"type": "HF", "repo": "org/name", "files": ["a.json"], "target": "/hf"},
    {"type": "S3", "url": "s3://bucket/p", "target": "/s3", "allowWrite": True},
    {"type": "HF", "repo": "org/name"},  # no target: refused by both
    "__remove-if-empty__",
    {"__spread__": "%%ops.x.results.y%%"},
    {"__spread__": "not a literal"},
]
_IDS = list(OP_IDS.values())
_RESTART: list[Any] = ["no", "always", "never", {"policy": "on-failure", "restart_tries": 2}]


def _place_unknown(document: Any, rng: random.Random) -> None:
    target = rng.choice([document, document["ops"][0], args_of(document)])
    target[rng.choice(["colour", "required_vram", "Image"])] = 1


def _health(document: Any, rng: random.Random) -> None:
    check = rng.choice([http_check(), http_check(method="HEAD"), {"type": "websocket"}])
    args_of(document)["expose"] = [{"port": rng.randint(1, 65535), "health_checks": [check]}]


_CHANGES: list[Callable[[Any, random.Random], None]] = [
    lambda d, rng: d["ops"][0].update(id=rng.choice(_IDS)),
    _place_unknown,
    _health,
    lambda d, rng: args_of(d).update(expose=rng.choice(_AGREEING_EXPOSE)),
    lambda d, rng: args_of(d).setdefault("resources", []).append(rng.choice(_RESOURCES)),
    lambda d, rng: args_of(d).update(restart_policy=rng.choice(_RESTART)),
    lambda d, rng: args_of(d).update({rng.choice(["gpu", "env", "cmd", "private"]): None}),
    lambda d, rng: d.setdefault("meta", {}).update(extra=rng.choice(["a", 1, [1, "b"], True])),
    lambda d, rng: args_of(d).update(
        cmd=["echo", "%%ops.x.results.y%%"], env={"A": "%%global.job%%"}
    ),
    lambda d, rng: d.update(version=rng.choice(["0.1", "0.1", "0.2"])),
    lambda d, rng: args_of(d).update(aliases=rng.choice(["a", ["a", "b"], 5])),
]


def combinations(bases: list[Case]) -> list[Case]:
    rng = random.Random(SEED)
    cases = []
    for number in range(COMBINATIONS):
        base = rng.choice(bases)
        picked = rng.sample(_CHANGES, rng.randint(1, 3))

        def change(document: Any, picked: list[Any] = picked) -> None:
            for one in picked:
                one(document, rng)

        cases.append(Case(f"random/{number:03d}", changed(base.document, change)))
    return cases


def corpus() -> list[Case]:
    found = templates()
    cases = [*found, *shapes(), *variations(), *structure(), *mistakes(), *combinations(found)]
    names = [case.name for case in cases]
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, f"two cases of one name: {sorted(duplicates)}"
    return cases
