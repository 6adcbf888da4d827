"""Variations of the parts of a job with rules of their own: resources of each type, restart
policies, execution order, volumes, `global` and its variables, `meta`, `logistics`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .documents import Case, job, run, volume

IAM = {"REGION": "r", "ACCESS_KEY_ID": "k", "SECRET_ACCESS_KEY": "s"}

RESOURCES: dict[str, Any] = {
    "hf-no-target": {"type": "HF", "repo": "org/name"},
    "hf-target-null": {"type": "HF", "repo": "org/name", "target": None},
    "hf-bad-repo": {"type": "HF", "repo": "not a repo", "target": "/m"},
    "hf-empty-revision": {"type": "HF", "repo": "o/n", "revision": "", "target": "/m"},
    "hf-revision-null": {"type": "HF", "repo": "o/n", "revision": None, "target": "/m"},
    "hf-files-empty": {"type": "HF", "repo": "o/n", "files": [], "target": "/m"},
    "hf-files-escape": {"type": "HF", "repo": "o/n", "files": ["../x"], "target": "/m"},
    "hf-files-number": {"type": "HF", "repo": "o/n", "files": [1], "target": "/m"},
    "hf-with-bucket": {"type": "HF", "repo": "o/n", "bucket": "b", "target": "/m"},
    "hf-lower-case-type": {"type": "hf", "repo": "o/n", "target": "/m"},
    "hf-url-instead-of-repo": {"type": "HF", "url": "o/n", "target": "/m"},
    "target-relative": {"type": "HF", "repo": "o/n", "target": "models"},
    "target-escapes": {"type": "HF", "repo": "o/n", "target": "/a/../b"},
    "target-number": {"type": "HF", "repo": "o/n", "target": 5},
    "s3-no-target": {"type": "S3", "url": "s3://b/p"},
    "s3-no-url": {"type": "S3", "target": "/m"},
    "s3-bucket-without-url": {"type": "S3", "bucket": "b", "target": "/m"},
    "s3-bucket-and-files": {"type": "S3", "url": "https://h", "bucket": "b", "files": ["a"]}
    | {"target": "/m"},
    "s3-buckets-and-url": {"type": "S3", "url": "s3://b/p", "buckets": [{"url": "s3://c/d"}]}
    | {"target": "/m"},
    "s3-buckets-empty": {"type": "S3", "buckets": [], "target": "/m"},
    "s3-buckets-and-files": {"type": "S3", "buckets": [{"url": "s3://c"}], "files": ["a"]}
    | {"target": "/m"},
    "s3-buckets-and-bucket": {"type": "S3", "buckets": [{"url": "s3://c"}], "bucket": "b"}
    | {"target": "/m"},
    "s3-bucket-entry-extra": {"type": "S3", "buckets": [{"url": "s3://c", "x": 1}], "target": "/m"},
    "s3-bucket-entry-no-url": {"type": "S3", "buckets": [{"files": ["a"]}], "target": "/m"},
    "s3-empty-url": {"type": "S3", "url": "", "target": "/m"},
    "s3-allow-write-string": {"type": "S3", "url": "s3://b/p", "allowWrite": "yes", "target": "/m"},
    "s3-iam": {"type": "S3", "url": "s3://b/p", "IAM": IAM, "target": "/m"},
    "s3-iam-missing-key": {"type": "S3", "url": "s3://b", "IAM": {"REGION": "r"}, "target": "/m"},
    "s3-iam-extra-key": {"type": "S3", "url": "s3://b", "IAM": IAM | {"TOKEN": "t"}}
    | {"target": "/m"},
    "s3-iam-empty-region": {"type": "S3", "url": "s3://b", "IAM": IAM | {"REGION": ""}}
    | {"target": "/m"},
    "s3-iam-number": {"type": "S3", "url": "s3://b", "IAM": IAM | {"REGION": 1}, "target": "/m"},
    "ollama-empty-model": {"type": "Ollama", "model": ""},
    "ollama-bad-model": {"type": "Ollama", "model": "Llama 3"},
    "ollama-no-model": {"type": "Ollama"},
    "ollama-with-files": {"type": "Ollama", "model": "m", "files": ["a"]},
    "no-type": {"repo": "o/n", "target": "/m"},
    "type-number": {"type": 1, "repo": "o/n", "target": "/m"},
    "type-unknown": {"type": "FTP", "url": "ftp://x", "target": "/m"},
    "string": "org/name",
    "number": 5,
}


def _resources() -> Iterator[Case]:
    for label, resource in RESOURCES.items():
        yield Case(f"resource/{label}", job(run(resources=[resource])))
    yield Case("resource/not-a-list", job(run(resources={"type": "Ollama", "model": "m"})))
    yield Case("resource/empty-list", job(run(resources=[])))


def _restart_policies() -> Iterator[Case]:
    policies: dict[str, Any] = {
        "unknown": "sometimes",
        "upper-case": "ALWAYS",
        "number": 3,
        "object-always": {"policy": "always"},
        "object-no-policy": {"restart_tries": 3},
        "object-tries": {"policy": "on-failure", "restart_tries": 3},
        "object-tries-zero": {"policy": "on-failure", "restart_tries": 0},
        "object-tries-whole-float": {"policy": "on-failure", "restart_tries": 3.0},
        "object-tries-fraction": {"policy": "on-failure", "restart_tries": 2.5},
        "object-tries-negative": {"policy": "on-failure", "restart_tries": -1},
        "object-tries-string": {"policy": "on-failure", "restart_tries": "3"},
        "object-extra-key": {"policy": "on-failure", "delay": 5},
        "list": ["on-failure"],
    }
    for label, policy in policies.items():
        yield Case(f"restart-policy/{label}", job(run(restart_policy=policy)))


def _execution() -> Iterator[Case]:
    def ex(op: dict[str, Any], **execution: Any) -> dict[str, Any]:
        return {**op, "execution": execution}

    cases: dict[str, dict[str, Any]] = {
        "group-empty-string": job(ex(run("a"), group="")),
        "group-number": job(ex(run("a"), group=1)),
        "depends-on-unknown-op": job(run("a"), ex(run("b"), depends_on=["nope"])),
        "depends-on-itself": job(ex(run("a"), depends_on=["a"])),
        "depends-on-cycle": job(ex(run("a"), depends_on=["b"]), ex(run("b"), depends_on=["a"])),
        "depends-on-earlier-group": job(ex(run("a"), depends_on=["b"]), run("b")),
        "depends-on-number": job(run("a"), ex(run("b"), depends_on=[1])),
        "depends-on-string": job(run("a"), ex(run("b"), depends_on="a")),
        "depends-on-null": job(run("a"), ex(run("b"), depends_on=None)),
        "stop-without-depends-on": job(ex(run("a"), stop_if_dependent_stops=True)),
        "stop-with-depends-on": job(
            run("a"), ex(run("b"), depends_on=["a"], stop_if_dependent_stops=False)
        ),
        "stop-string": job(run("a"), ex(run("b"), depends_on=["a"], stop_if_dependent_stops="y")),
        "groups-interleaved": job(
            ex(run("a"), group="g1"), ex(run("b"), group="g2"), ex(run("c"), group="g1")
        ),
        "unknown-key": job(ex(run("a"), after="b")),
    }
    for label, document in cases.items():
        yield Case(f"execution/{label}", document)


def _volumes_and_ops() -> Iterator[Case]:
    mount = {"name": "cache", "dest": "/cache"}
    cases: dict[str, Any] = {
        "mount-unknown-volume": job(run(volumes=[mount])),
        "mount-relative-dest": job(volume(), run(volumes=[{"name": "cache", "dest": "cache"}])),
        "mount-no-dest": job(volume(), run(volumes=[{"name": "cache"}])),
        "mount-extra-key": job(volume(), run(volumes=[mount | {"readonly": True}])),
        "volume-empty-name": job(volume(name=""), run(volumes=[{"name": "", "dest": "/c"}])),
        "volume-name-number": job({**volume(), "args": {"name": 1}}),
        "volume-op-with-run-args": job({**volume(), "args": {"image": "busybox"}}),
        "run-op-with-volume-args": job({**run(), "args": {"name": "cache"}}),
        "run-args-image-and-name": job({**run(), "args": {"image": "b", "name": "c"}}),
        "run-args-empty": job({**run(), "args": {}}),
        "image-empty": job(run(image="")),
        "op-type-unknown": job({**run(), "type": "container/exec"}),
        "op-no-type": job({"id": "a", "args": {"image": "b"}}),
        "op-no-id": job({"type": "container/run", "args": {"image": "b"}}),
        "op-no-args": job({"type": "container/run", "id": "a"}),
        "op-args-list": job({"type": "container/run", "id": "a", "args": []}),
        "ops-not-list": {"version": "0.1", "type": "container", "ops": {"a": run()}},
        "ops-missing": {"version": "0.1", "type": "container"},
        "op-not-object": job("run"),  # type: ignore[arg-type]
    }
    for label, document in cases.items():
        yield Case(f"ops/{label}", document)


def _global_meta_logistics() -> Iterator[Case]:
    leg = {"type": "api", "args": {}}
    no_image = {"type": "container/run", "id": "a", "args": {"cmd": "ls"}}
    cases: dict[str, Any] = {
        "global-image-for-op-without-one": job(no_image, **{"global": {"image": "busybox"}}),
        "global-variables-number": job(run(), **{"global": {"variables": {"A": 1}}}),
        "global-env-number": job(run(), **{"global": {"env": {"A": 1}}}),
        "global-unknown-key": job(run(), **{"global": {"cmd": "ls"}}),
        "global-work-dir-relative": job(run(), **{"global": {"work_dir": "srv"}}),
        "variable-unused": job(run(), **{"global": {"variables": {"A": "x"}}}),
        "variable-in-op-id": job(
            run("%%global.variables.ID%%"), **{"global": {"variables": {"ID": "a b"}}}
        ),
        "variable-in-cmd": job(run(cmd="%%global.variables.A%%"), **{"global": {"variables": {}}}),
        "variable-holds-literal": job(
            run(cmd="%%global.variables.A%%"), **{"global": {"variables": {"A": "%%ops.x.y%%"}}}
        ),
        "meta-nested-object": job(run(), meta={"a": {"b": {"c": 1}}}),
        "meta-list-of-objects": job(run(), meta={"a": [{"b": 1}]}),
        "meta-boolean": job(run(), meta={"a": True}),
        "meta-null-value": job(run(), meta={"a": None}),
        "meta-trigger-number": job(run(), meta={"trigger": 1}),
        "meta-system-resources-list": job(run(), meta={"system_resources": {"a": [1]}}),
        "meta-record-of-lists": job(run(), meta={"req": {"cuda": ["12.8"], "vram": 8}}),
        "meta-not-object": job(run(), meta=["a"]),
        "logistics-send-only": job(run(), logistics={"send": leg}),
        "logistics-type-unknown": job(
            run(), logistics={"send": leg, "receive": leg | {"type": "x"}}
        ),
        "logistics-args-extra": job(
            run(), logistics={"send": leg, "receive": {"type": "api", "args": {"url": "u"}}}
        ),
        "logistics-no-args": job(run(), logistics={"send": leg, "receive": {"type": "api"}}),
        "deployment-id-number": job(run(), deployment_id=5),
    }
    for label, document in cases.items():
        yield Case(f"top/{label}", document)


def _container_places() -> Iterator[Case]:
    """Mount points and environment names that Docker refuses, or that replace what the
    container needs, when the op starts (and a job of more ops than the daemon takes)."""
    hf = {"type": "HF", "repo": "o/n"}
    mount = {"name": "cache"}
    cases: dict[str, Any] = {
        "target-root": job(run(resources=[hf | {"target": "/"}])),
        "target-proc": job(run(resources=[hf | {"target": "/proc"}])),
        "target-under-sys": job(run(resources=[hf | {"target": "/sys/kernel"}])),
        "target-dev": job(run(resources=[hf | {"target": "//dev/"}])),
        "target-nul": job(run(resources=[hf | {"target": "/models\u0000"}])),
        "ollama-target-proc": job(
            run(resources=[{"type": "Ollama", "model": "m", "target": "/proc/x"}])
        ),
        "dest-root": job(volume(), run(volumes=[mount | {"dest": "/"}])),
        "dest-under-proc": job(volume(), run(volumes=[mount | {"dest": "/proc/self"}])),
        "env-name-empty": job(run(env={"": "x"})),
        "env-name-with-equals": job(run(env={"PATH=/tmp": "x"})),
        "env-name-nul": job(run(env={"A\u0000": "x"})),
        "env-value-nul": job(run(env={"A": "x\u0000y"})),
        "global-env-name-with-equals": job(run(), **{"global": {"env": {"A=B": "x"}}}),
        "too-many-ops": job(*(run(f"r{i}") for i in range(1_001))),
    }
    for label, document in cases.items():
        yield Case(f"container/{label}", document)


def structure() -> list[Case]:
    return [
        *_resources(),
        *_container_places(),
        *_restart_policies(),
        *_execution(),
        *_volumes_and_ops(),
        *_global_meta_logistics(),
    ]
