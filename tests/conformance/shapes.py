"""Every job shape in `@nosana/types`' own type definitions (dist/Jobs/**/*.d.ts, 2.1.6), one
document each: every property of every type, each member of each union, each marker."""

from __future__ import annotations

from typing import Any

from .documents import Case, http_check, job, run, volume

OPS = "%%ops.make.results.value%%"

_RESOURCES: dict[str, dict[str, Any] | str] = {
    "s3-url": {"type": "S3", "url": "s3://bucket/prefix", "target": "/data"},
    "s3-url-files": {"type": "S3", "url": "https://h.example/b/p", "files": ["a"], "target": "/d"},
    "s3-url-every-field": {
        "type": "S3",
        "url": "s3://bucket/prefix",
        "files": ["a/b.bin"],
        "allowWrite": True,
        "IAM": {"REGION": "eu-west-1", "ACCESS_KEY_ID": "AKIA", "SECRET_ACCESS_KEY": "s"},
        "target": "/data",
    },
    "s3-with-bucket": {
        "type": "S3",
        "bucket": "models",
        "url": "https://s3.example",
        "allowWrite": False,
        "IAM": {"REGION": "r", "ACCESS_KEY_ID": "k", "SECRET_ACCESS_KEY": "s"},
        "target": "/data",
    },
    "s3-with-buckets": {
        "type": "S3",
        "buckets": [{"url": "s3://one/a", "files": ["x"]}, {"url": "s3://two/b"}],
        "allowWrite": True,
        "target": "/data",
    },
    "hf": {"type": "HF", "repo": "org/name", "target": "/models"},
    "hf-every-field": {
        "type": "HF",
        "repo": "org/name",
        "revision": "v1.0",
        "files": ["config.json", "weights/model.safetensors"],
        "accessToken": "hf_token",
        "target": "/models/",
    },
    "ollama": {"type": "Ollama", "model": "llama3.1:8b"},
    "ollama-target": {"type": "Ollama", "model": "library/qwen3:0.6b", "target": "/ollama"},
    "remove-if-empty": "__remove-if-empty__",
    "spread": {"__spread__": OPS},
    "spread-chunked": {"__spread__": "%%global.variables.MORE%%", "chunked": True},
}


def _resource_shapes() -> list[Case]:
    return [
        Case(f"shape/resources/{name}", job(run(resources=[entry])))
        for name, entry in _RESOURCES.items()
    ] + [Case("shape/resources/all-at-once", job(run(resources=list(_RESOURCES.values()))))]


def _expose_shapes() -> list[Case]:
    checks = [
        http_check(),
        http_check(method="POST", headers={"Content-Type": "application/json"}, body={"a": 1}),
        http_check(method="PUT", body="text", continuous=True, expected_status=204),
        http_check(method="DELETE", body=None),
        {"type": "websocket", "expected_response": "pong", "continuous": True},
    ]
    shapes: dict[str, Any] = {
        "number": 8080,
        "literal-ops": OPS,
        "literal-global": "%%global.host%%",
        "object": {"port": 8080},
        "object-health-checks": {"port": 8080, "type": "api", "health_checks": checks},
        "object-no-health-checks": {"port": 8080, "health_checks": []},
        "spread": {"__spread__": OPS},
        "spread-chunked": {"__spread__": OPS, "chunked": False},
        "list-empty": [],
        "list-mixed": [80, {"port": 443, "type": "web"}, OPS, {"__spread__": OPS}, OPS],
        "list-of-services": [
            {"port": 8000 + i, "type": kind}
            for i, kind in enumerate(["web", "api", "webapi", "websocket", "none"])
        ],
    }
    return [Case(f"shape/expose/{name}", job(run(expose=value))) for name, value in shapes.items()]


def _run_shapes() -> list[Case]:
    every = run(
        "every-field",
        aliases=["api", "svc"],
        cmd=["serve", "--port", "8080", "__remove-if-empty__"],
        volumes=[{"name": "cache", "dest": "/cache"}],
        expose=[8080],
        gpu=True,
        work_dir="/work",
        entrypoint="/bin/sh -c",
        env={"A": "1", "HF_TOKEN": "x"},
        restart_policy={"policy": "on-failure", "restart_tries": 3},
        private=True,
        resources=[{"type": "Ollama", "model": "llama3:8b"}],
        authentication={
            "docker": {"username": "u", "password": "p", "email": "e@x", "server": "r.example"}
        },
    )
    shapes: dict[str, dict[str, Any]] = {
        "every-field": job(volume(), every),
        "cmd-string": job(run(cmd="echo hello world")),
        "cmd-empty-list": job(run(cmd=[])),
        "entrypoint-list": job(run(entrypoint=["/bin/sh", "-c"])),
        "aliases-string": job(run(aliases="svc")),
        "authentication-empty": job(run(authentication={})),
        "authentication-docker-empty": job(run(authentication={"docker": {}})),
        "env-empty": job(run(env={})),
        "private-false": job(run(private=False)),
        "image-with-digest": job(run(image="r.example:5000/a/b@sha256:" + "0" * 64)),
    }
    for policy in ("no", "always", "unless-stopped", "on-failure"):
        shapes[f"restart-{policy}"] = job(run(restart_policy=policy))
    shapes["restart-object"] = job(run(restart_policy={"policy": "on-failure"}))
    return [Case(f"shape/run/{name}", document) for name, document in shapes.items()]


def _op_shapes() -> list[Case]:
    after = {"group": "second", "depends_on": ["first"], "stop_if_dependent_stops": True}
    results: dict[str, Any] = {
        "plain": "model: (.*)",
        "object": {"regex": "port=(\\d+)", "logType": ["stdout"]},
        "every-log": {"regex": ".", "logType": ["stdin", "stdout", "stderr", "nodeerr"]},
    }
    shapes: dict[str, dict[str, Any]] = {
        "no-ops": job(),
        "create-volume": job(volume(), run(volumes=[{"name": "cache", "dest": "/c"}])),
        "results": job({**run("first"), "results": results}),
        "results-empty": job({**run(), "results": {}}),
        "execution-empty": job({**run(), "execution": {}}),
        "execution-group": job({**run("a"), "execution": {"group": "g"}}, run("b")),
        "execution-depends-on": job(
            {**run("first"), "execution": {"group": "first"}}, {**run("second"), "execution": after}
        ),
        "execution-depends-on-empty": job({**run(), "execution": {"depends_on": []}}),
        "execution-volume-op": job({**volume(), "execution": {"group": "g"}}),
        "many-ops": job(*(run(f"op-{i}") for i in range(40))),
    }
    return [Case(f"shape/ops/{name}", document) for name, document in shapes.items()]


def _top_shapes() -> list[Case]:
    leg = {"type": "api", "args": {"endpoint": "https://api.example/jobs/%%global.job%%"}}
    listen = {"type": "api-listen", "args": {}}
    glob = {
        "image": "busybox:1",
        "gpu": False,
        "entrypoint": ["/bin/sh"],
        "env": {"G": "1"},
        "work_dir": "/srv",
        "variables": {"MORE": "[]", "PORT": "8080"},
    }
    meta = {
        "trigger": "cli",
        "system_resources": {"vram": 24, "cuda": "12.4"},
        "system_requirements": {"vram_total_mb": 8192, "required_cuda": ["12.8", 12.9]},
        "tags": ["llm", 1],
        "title": "a job",
        "priority": 2.5,
    }
    shapes: dict[str, dict[str, Any]] = {
        "global-every-field": job(run(), **{"global": glob}),
        "global-empty": job(run(), **{"global": {}}),
        "global-entrypoint-string": job(run(), **{"global": {"entrypoint": "/bin/sh"}}),
        "meta-every-kind": job(run(), meta=meta),
        "meta-empty": job(run(), meta={}),
        "logistics": job(run(), logistics={"send": leg, "receive": listen}),
        "logistics-listen-both": job(run(), logistics={"send": listen, "receive": listen}),
        "deployment-id": job(run(), deployment_id="3F7n...deployment"),
        "literals-from-nosana-docs": job(
            run("setter", cmd="echo ok"),
            run(
                "user",
                env={"__spread__": "%%ops.setter.results.env_json%%"},
                expose=[{"__spread__": "%%ops.setter.results.expose_json%%"}],
                resources=["__remove-if-empty__", {"__spread__": "%%ops.setter.results.res%%"}],
            ),
        ),
    }
    return [Case(f"shape/top/{name}", document) for name, document in shapes.items()]


def shapes() -> list[Case]:
    return [*_resource_shapes(), *_expose_shapes(), *_run_shapes(), *_op_shapes(), *_top_shapes()]
