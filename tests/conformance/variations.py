"""Variations of real job shapes, by family, each named `<family>/<label>`: op ids, literals in
every field that takes a string, markers, ports, resources, restart policies, execution,
unknown keys at every level, wrong types, `null`s, versions, removed properties."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .documents import Case, args_of, changed, first_op, http_check, job, put, run, template, volume

SERVICE = "GPT-OSS__job-definition-120b"  # a service: health checks, an Ollama variable
FILES = "Wan2.2__job-definition"  # HF resources with files
S3 = "ComfyUI__job-definition-flux"  # an S3 resource
HELLO = "hello-world__job-definition"

OP_IDS: dict[str, Any] = {
    "colon": "gpt-oss:120b",
    "colon-and-dash": "Nanonets-OCR2:1-5B",
    "slash": "org/model",
    "dots": "v1.2.3",
    "dot": ".",
    "dot-dot": "..",
    "path-escape": "../../etc/passwd",
    "unicode": "модель-ünï",
    "emoji": "🚀-launch",
    "cjk": "模型",
    "nbsp": "a\u00a0b",
    "ideographic-space": "a\u3000b",
    "tab": "a\tb",
    "newline": "a\nb",
    "nul": "a\x00b",
    "empty": "",
    "space": "a b",
    "leading-space": " a",
    "only-space": " ",
    "very-long": "x" * 300,
    "literal": "%%ops.a.results.b%%",
    "upper-case": "SERVER",
    "number": 5,
    "null": None,
}

LITERALS: dict[str, str] = {
    "ops": "%%ops.prev.results.value%%",
    "global": "%%global.job%%",
    "globals": "%%globals.project%%",
    "variable": "%%global.variables.VALUE%%",
    "missing-variable": "%%global.variables.NOPE%%",
}

EXPOSE: dict[str, Any] = {
    "port-0": 0,
    "port-negative": -1,
    "port-65535": 65535,
    "port-65536": 65536,
    "port-fraction": 8080.5,
    "port-whole-float": 8080.0,
    "port-string": "8080",
    "range-string": "8000-8010",
    "range-in-list": ["8000-8010"],
    "range-in-object": [{"port": "8000-8010"}],
    "duplicate-numbers": [80, 80],
    "duplicate-number-and-object": [80, {"port": 80}],
    "duplicate-objects": [{"port": 80, "type": "web"}, {"port": 80, "type": "api"}],
    "distinct": [80, 81, {"port": 82}],
    "duplicate-literals": ["%%ops.a.results.p%%", "%%ops.a.results.p%%"],
    "duplicate-spreads": [{"__spread__": "%%ops.a.b%%"}, {"__spread__": "%%ops.a.b%%"}],
    "literal-with-newline-inside": "%%ops.a\n%%",
    "literal-newline-after-ops": "%%ops\n.a%%",
    "literal-no-dot": "%%opsXa%%",
    "literal-globals": "%%globals.port%%",
    "literal-upper-case": "%%OPS.a.b%%",
    "literal-leading-space": " %%ops.a.b%%",
    "literal-trailing-newline": "%%ops.a.b%%\n",
    "literal-two": "%%ops.a.b%%%%ops.c.d%%",
    "literal-empty-name": "%%ops%%",
    "variable-port": "%%global.variables.PORT%%",
    "variable-port-in-list": [80, "%%global.variables.PORT%%"],
    "variable-not-a-port": "%%global.variables.VALUE%%",
    "variable-duplicate-port": [8080, "%%global.variables.PORT%%"],
    "spread-not-literal": {"__spread__": "8080"},
    "spread-and-port": {"__spread__": "%%ops.a.b%%", "port": 80},
    "spread-chunked-string": {"__spread__": "%%ops.a.b%%", "chunked": "yes"},
    "object-without-port": {"type": "web"},
    "object-bad-type": {"port": 80, "type": "grpc"},
    "boolean": True,
    "null-entry": [80, None],
    "nested-list": [[80]],
}

CHECKS: dict[str, dict[str, Any]] = {
    "method-patch": http_check(method="PATCH"),
    "status-string": http_check(expected_status="200"),
    "status-fraction": http_check(expected_status=200.5),
    "status-whole-float": http_check(expected_status=200.0),
    "status-not-http": http_check(expected_status=42),
    "no-continuous": {k: v for k, v in http_check().items() if k != "continuous"},
    "no-path": {k: v for k, v in http_check().items() if k != "path"},
    "headers-number": http_check(headers={"X": 1}),
    "headers-null": http_check(headers=None),
    "body-null": http_check(body=None),
    "body-list": http_check(body=[1, "a"]),
    "path-literal": http_check(path="/%%ops.a.results.p%%"),
    "websocket-no-response": {"type": "websocket", "continuous": True},
    "websocket-with-path": {"type": "websocket", "expected_response": "x", "continuous": True}
    | {"path": "/"},
    "type-tcp": {"type": "tcp", "continuous": True},
    "unknown-key": http_check(timeout=5),
}


def _with_args(base: dict[str, Any], **updates: Any) -> dict[str, Any]:
    return changed(base, lambda d: args_of(d).update(updates))  # type: ignore[no-any-return]


def _op_ids() -> Iterator[Case]:
    base = template(SERVICE)
    for label, op_id in OP_IDS.items():
        yield Case(f"op-id/{label}", changed(base, put(first_op, "id", op_id)))
        pair = job(run("a"), {**run("b"), "execution": {"depends_on": [op_id]}})
        pair["ops"][0]["id"] = op_id
        yield Case(f"op-id/{label}/depended-on", pair)
    yield Case("op-id/duplicate", job(run("a"), run("a")))
    yield Case("op-id/duplicate-unicode", job(run("模型"), run("模型")))
    yield Case("op-id/differ-by-case", job(run("a"), run("A")))


def _literals() -> Iterator[Case]:
    """Every field that takes a string, holding each kind of literal."""
    places: dict[str, Callable[[str], dict[str, Any]]] = {
        "image": lambda v: job(run(image=v)),
        "cmd-string": lambda v: job(run(cmd=f"echo {v}")),
        "cmd-item": lambda v: job(run(cmd=["echo", v])),
        "entrypoint": lambda v: job(run(entrypoint=[v])),
        "env-value": lambda v: job(run(env={"A": v})),
        "work-dir": lambda v: job(run(work_dir=v)),
        "work-dir-inside": lambda v: job(run(work_dir=f"/srv/{v}")),
        "aliases": lambda v: job(run(aliases=[v])),
        "volume-dest": lambda v: job(volume(), run(volumes=[{"name": "cache", "dest": v}])),
        "model": lambda v: job(run(resources=[{"type": "Ollama", "model": v}])),
        "ollama-target": lambda v: job(
            run(resources=[{"type": "Ollama", "model": "m", "target": v}])
        ),
        "repo": lambda v: job(run(resources=[{"type": "HF", "repo": v, "target": "/m"}])),
        "revision": lambda v: job(
            run(resources=[{"type": "HF", "repo": "o/n", "revision": v, "target": "/m"}])
        ),
        "hf-files": lambda v: job(
            run(resources=[{"type": "HF", "repo": "o/n", "files": [v], "target": "/m"}])
        ),
        "access-token": lambda v: job(
            run(resources=[{"type": "HF", "repo": "o/n", "accessToken": v, "target": "/m"}])
        ),
        "s3-url": lambda v: job(run(resources=[{"type": "S3", "url": v, "target": "/m"}])),
        "s3-target": lambda v: job(run(resources=[{"type": "S3", "url": "s3://b/p", "target": v}])),
        "health-path": lambda v: job(
            run(expose={"port": 80, "health_checks": [http_check(path=v)]})
        ),
        "deployment-id": lambda v: job(run(), deployment_id=v),
        "meta": lambda v: job(run(), meta={"note": v}),
        "group": lambda v: job({**run(), "execution": {"group": v}}),
        "result-regex": lambda v: job({**run(), "results": {"r": v}}),
        "global-image": lambda v: job(run(), **{"global": {"image": v}}),
        "global-work-dir": lambda v: job(run(), **{"global": {"work_dir": v}}),
    }
    values = {"model": "qwen3:0.6b", "repo": "org/name"}
    for place, build in places.items():
        for label, literal in LITERALS.items():
            if label == "missing-variable" and place not in ("cmd-item", "model", "global-image"):
                continue  # one reason: a few places say it
            document = build(literal)
            document.setdefault("global", {})["variables"] = {"VALUE": values.get(place, "/v")}
            yield Case(f"literal/{place}/{label}", document)


def _ports() -> Iterator[Case]:
    base = template(SERVICE)
    for label, value in EXPOSE.items():
        document = _with_args(base, expose=value)
        document["global"]["variables"] |= {"PORT": "8080", "VALUE": "abc"}
        yield Case(f"expose/{label}", document)
    for label, check in CHECKS.items():
        yield Case(
            f"health-check/{label}", job(run(expose=[{"port": 80, "health_checks": [check]}]))
        )


def _markers() -> Iterator[Case]:
    spread = {"__spread__": "%%ops.a.results.r%%"}
    cases: dict[str, Any] = {
        "remove-if-empty-alone": ["__remove-if-empty__"],
        "remove-if-empty-twice": ["__remove-if-empty__", "__remove-if-empty__"],
        "remove-if-empty-upper-case": ["__REMOVE-IF-EMPTY__"],
        "other-string": ["model"],
        "spread-alone": [spread],
        "spread-variable": [{"__spread__": "%%global.variables.MISSING%%"}],
        "spread-not-literal": [{"__spread__": "[]"}],
        "spread-number": [{"__spread__": 5}],
        "spread-chunked": [{**spread, "chunked": True}],
        "spread-chunked-null": [{**spread, "chunked": None}],
        "spread-extra-key": [{**spread, "type": "HF"}],
        "null-entry": [None],
        "list-in-list": [[]],
    }
    for label, resources in cases.items():
        yield Case(f"marker/resources/{label}", job(run(resources=resources)))
    yield Case("marker/cmd-remove-if-empty", job(run(cmd=["a", "__remove-if-empty__"])))
    yield Case("marker/env-spread-key", job(run(env={"__spread__": "%%ops.a.results.env%%"})))
    yield Case("marker/volumes-spread", job(run(volumes=[spread])))


def variations() -> list[Case]:
    return [*_op_ids(), *_literals(), *_ports(), *_markers()]
