"""Mistakes at every level of real job shapes: unknown keys, wrong types, `null`s, versions,
properties the current schema dropped, documents that are not objects."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .documents import Case, args_of, changed, first_op, job, put, run, template, volume, whole

SERVICE = "GPT-OSS__job-definition-120b"
HELLO = "hello-world__job-definition"

# Where an unknown key can go in a real service job, by the path of the object it joins.
_PLACES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "top": whole,
    "meta": lambda d: d["meta"],
    "global": lambda d: d["global"],
    "op": first_op,
    "args": args_of,
    "expose-object": lambda d: args_of(d)["expose"][0],
    "health-check": lambda d: args_of(d)["expose"][0]["health_checks"][0],
    "resource": lambda d: args_of(d)["resources"][0],
}


def _unknown_keys() -> Iterator[Case]:
    base = template(SERVICE)
    for place, find in _PLACES.items():
        for key in ("colour", "__proto__", "", "ID", "required_vram"):
            label = key.strip("_") or "empty"
            yield Case(
                f"unknown-key/{place}/{label}",
                changed(base, put(find, key, 1)),
            )


def _removed() -> Iterator[Case]:
    """Properties of older Nosana schemas, gone from the current one."""
    base = template(HELLO)
    removed: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], str, Any]] = {
        "required-vram": (args_of, "required_vram", 8),
        "output": (args_of, "output", "/out"),
        "gpus": (args_of, "gpus", 1),
        "ports": (args_of, "ports", [80]),
        "logistics-send-optional": (whole, "logistics", {"send": None}),
    }
    for label, (find, key, value) in removed.items():
        yield Case(f"removed/{label}", changed(base, put(find, key, value)))
    yield Case(
        "removed/meta-requirement",  # meta is open: old keys there stay allowed
        changed(base, lambda d: d["meta"].update(system_requirements={"required_vram": 8})),
    )


_WRONG_ARGS: dict[str, Any] = {
    "image": 5,
    "gpu": "true",
    "gpu-number": 1,
    "cmd": 5,
    "cmd-items": [1, 2],
    "cmd-object": {"a": "b"},
    "entrypoint": 5,
    "env": ["A=1"],
    "env-value-number": {"A": 1},
    "env-value-boolean": {"A": True},
    "work_dir": 5,
    "private": "yes",
    "aliases": 5,
    "aliases-items": [1],
    "volumes": {"name": "a", "dest": "/a"},
    "expose": {"ports": [80]},
    "authentication": "user:pass",
    "authentication-docker": {"docker": "user"},
    "authentication-password": {"docker": {"password": 5}},
    "authentication-extra": {"docker": {"token": "t"}},
}


def _wrong_types() -> Iterator[Case]:
    base = template(HELLO)
    for label, value in _WRONG_ARGS.items():
        key = label.split("-")[0]
        yield Case(
            f"wrong-type/args/{label}",
            changed(base, put(args_of, key, value)),
        )
    tops: dict[str, tuple[str, Any]] = {
        "global": ("global", "busybox"),
        "meta": ("meta", "dashboard"),
        "ops": ("ops", "run"),
        "type": ("type", 1),
        "deployment-id": ("deployment_id", ["a"]),
        "logistics": ("logistics", []),
    }
    for label, (key, value) in tops.items():
        yield Case(f"wrong-type/top/{label}", changed(base, put(whole, key, value)))
    ops: dict[str, tuple[str, Any]] = {
        "id": ("id", 5),
        "results": ("results", ["a"]),
        "results-value-number": ("results", {"a": 1}),
        "results-value-null": ("results", {"a": None}),
        "result-log-type-unknown": ("results", {"a": {"regex": ".", "logType": ["stdlog"]}}),
        "result-log-type-twice": ("results", {"a": {"regex": ".", "logType": ["stdout"] * 2}}),
        "result-log-type-empty": ("results", {"a": {"regex": ".", "logType": []}}),
        "result-log-type-five": ("results", {"a": {"regex": ".", "logType": ["stdout"] * 5}}),
        "result-no-regex": ("results", {"a": {"logType": ["stdout"]}}),
        "execution": ("execution", ["a"]),
        "args": ("args", "busybox"),
    }
    for label, (key, value) in ops.items():
        yield Case(
            f"wrong-type/op/{label}",
            changed(base, put(first_op, key, value)),
        )


def _nulls() -> Iterator[Case]:
    """`null` where a property may only be left out (and where anything is allowed)."""
    base = template(HELLO)
    for key in ("cmd", "entrypoint", "env", "work_dir", "gpu", "expose", "private", "aliases"):
        yield Case(f"null/args/{key}", changed(base, put(args_of, key, None)))
    for key in ("volumes", "resources", "restart_policy", "authentication"):
        yield Case(f"null/args/{key}", changed(base, put(args_of, key, None)))
    for key in ("global", "meta", "logistics", "deployment_id"):
        yield Case(f"null/top/{key}", changed(base, put(whole, key, None)))
    for key in ("results", "execution", "args"):
        yield Case(f"null/op/{key}", changed(base, put(first_op, key, None)))
    yield Case("null/op/group", job({**run(), "execution": {"group": None}}))
    yield Case("null/global-image", job(run(), **{"global": {"image": None}}))
    yield Case(
        "null/ollama-target", job(run(resources=[{"type": "Ollama", "model": "m", "target": None}]))
    )
    yield Case("null/docker-username", job(run(authentication={"docker": {"username": None}})))
    yield Case("null/volume-name", job({**volume(), "args": {"name": None}}))
    yield Case("null/env-value", job(run(env={"A": None})))
    yield Case("null/document", None)


def _versions_and_documents() -> Iterator[Case]:
    base = template(HELLO)
    versions: dict[str, Any] = {
        "0-2": "0.2",
        "1-0": "1.0",
        "number": 0.1,
        "empty": "",
        "0-1-0": "0.1.0",
    }
    for label, version in versions.items():
        yield Case(f"version/{label}", changed(base, put(whole, "version", version)))
    yield Case("version/missing", changed(base, lambda d: d.pop("version")))
    yield Case("type/vm", changed(base, lambda d: d.update(type="vm")))
    yield Case("type/missing", changed(base, lambda d: d.pop("type")))
    for label, document in {
        "list": [base],
        "string": "job",
        "number": 1,
        "empty-object": {},
    }.items():
        yield Case(f"document/{label}", document)


def mistakes() -> list[Case]:
    return [*_unknown_keys(), *_removed(), *_wrong_types(), *_nulls(), *_versions_and_documents()]
