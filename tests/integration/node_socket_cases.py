"""What the node's calls on the engine socket must show, on any engine (Docker or Podman):
shared by test_node_socket.py (a private dockerd) and test_node_socket_podman.py.

Each case drives the socket with tests/peers/nosana_node.mjs (dockerode, the node's own
client, the node's options in the node's order) and checks the volume against the daemon's
own view of the same resource.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from tests.daemon_process import DaemonProcess
from tests.fakes.hf_hub import FakeHub
from tests.peers.nosana_node import node_call
from tests.peers.ollama import LICENSE, MODEL, PARAMS, push_model
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer


def tree(root: Path) -> dict[str, str]:
    """Every file under `root`: relative path → sha256."""
    found = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def daemon_view(daemon: DaemonProcess, resource: Any) -> Path:
    """The daemon's own view of `resource` (fetched through its API, as a job would)."""
    entry = daemon.client().request("POST", "/v1/resources?wait=true", body=resource)
    return Path(entry["path"])


def recent(daemon: DaemonProcess) -> list[dict[str, Any]]:
    node: dict[str, Any] = daemon.client().get("/v1/status")["node"]
    return list(node["recent"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def hf_cold_then_hot(daemon: DaemonProcess, socket: Path, hub: FakeHub) -> dict[str, Any]:
    repo = f"nodetest/{unique('model')}"
    files: dict[str, Any] = {
        "config.json": b'{"model_type": "llama"}',
        "model.safetensors": os.urandom(3 * 1024 * 1024),
        "tokenizer/vocab.txt": b"a\nb\n",
    }
    hub.commit(repo, dict(files))
    cold = node_call(socket, "helper", {"cmd": ["HF", repo, "", ""]})
    assert cold["exit"] == 0, cold
    assert cold["listed"], cold
    assert cold["state"] == "exited", cold
    last = cold["statuses"][-1]
    assert last["size"] == {
        "total": sum(map(len, files.values())),
        "current": last["size"]["total"],
    }
    assert last["count"] == {"total": 3, "current": 3}
    asked = hub.traffic.total()
    hot = node_call(socket, "helper", {"cmd": ["HF", repo, "", ""]})
    assert hot["exit"] == 0, hot
    assert hub.traffic.total() == asked, "a hit asks the Hub nothing"
    view = daemon_view(daemon, {"type": "HF", "repo": repo})
    volume = Path(hot["mountpoint"])
    assert (
        tree(volume) == tree(view) == {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
    )
    linked = os.stat(volume / "model.safetensors"), os.stat(view / "model.safetensors")
    assert linked[0].st_ino == linked[1].st_ino, (linked, recent(daemon)[:1], str(view))
    outcomes = [r["outcome"] for r in recent(daemon)[:2]]
    assert outcomes == ["hit", "miss"], recent(daemon)
    return hot


def s3_private(daemon: DaemonProcess, socket: Path, s3: S3Peer) -> dict[str, Any]:
    bucket = unique("nodebucket")
    objects = {"weights/a.bin": os.urandom(200_000), "weights/sub/b.json": b'{"b": 1}'}
    s3.bucket(bucket, objects)
    iam = s3.iam()
    env = [f"{key}={value}" for key, value in iam.items()]
    with s3.authentication():
        wrong = node_call(
            socket,
            "helper",
            {
                "cmd": ["S3", f"s3://{bucket}/weights", ""],
                "env": [*env[:2], "SECRET_ACCESS_KEY=no"],
            },
        )
        assert wrong["exit"] != 0, wrong
        assert wrong["error"], wrong
        cold = node_call(
            socket, "helper", {"cmd": ["S3", f"s3://{bucket}/weights", ""], "env": env}
        )
        assert cold["exit"] == 0, cold
        hot = node_call(socket, "helper", {"cmd": ["S3", f"s3://{bucket}/weights", ""], "env": env})
        assert hot["exit"] == 0, hot
        view = daemon_view(daemon, {"type": "S3", "url": f"s3://{bucket}/weights", "IAM": iam})
    assert tree(Path(hot["mountpoint"])) == tree(view)
    assert set(tree(view)) == {"a.bin", "sub/b.json"}
    assert recent(daemon)[0]["outcome"] == "hit"
    return {**hot, "view": str(view)}


def ollama_cold_then_hot(
    daemon: DaemonProcess, socket: Path, registry: RegistryPeer
) -> dict[str, Any]:
    name = unique("nodellama")
    layers = {MODEL: os.urandom(300_000), PARAMS: b'{"temperature": 0.1}', LICENSE: b"MIT"}
    push_model(registry.url, f"library/{name}", "1b", layers)
    cold = node_call(socket, "helper", {"cmd": ["Ollama", f"{name}:1b"]})
    assert cold["exit"] == 0, cold
    hot = node_call(socket, "helper", {"cmd": ["Ollama", f"{name}:1b"]})
    assert hot["exit"] == 0, hot
    view = daemon_view(daemon, {"type": "Ollama", "model": f"{name}:1b"})
    files = tree(Path(hot["mountpoint"]))
    assert files == tree(view)
    assert f"manifests/registry.ollama.ai/library/{name}/1b" in files
    assert recent(daemon)[0]["outcome"] == "hit"
    return hot


def missing_resource(daemon: DaemonProcess, socket: Path) -> None:
    result = node_call(socket, "helper", {"cmd": ["HF", f"nodetest/{unique('absent')}", "", ""]})
    assert result["exit"] == 1, result
    assert "no such repo" in result["error"], result
    assert [line["stream"] for line in result["lines"]] == [2], "the error line is on stderr"
    assert recent(daemon)[0]["outcome"] == "failed"


def job_sees_target(
    socket: Path, volume: str, expected: dict[str, str], **job: Any
) -> dict[str, Any]:
    """A job container with the volume at `/data-models`: its files' digests from inside."""
    args = {
        "name": unique("nosana-job"),
        "image": job.pop("image"),
        "cmd": ["sh", "-c", "cd /data-models && find . -type f | sort | xargs sha256sum; env"],
        "env": {"NOSANA_ID": "job-1", **job.pop("env", {})},
        "volumes": [{"dest": "/data-models", "name": volume, "readonly": True}],
        **job,
    }
    result = node_call(socket, "job", args)
    assert result.get("exit") == 0, result
    seen = {}
    for line in result["logs"]:
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith("./"):
            seen[parts[1][2:]] = parts[0]
    assert seen == expected
    return result
