"""Nosana jobs through the real daemon, the test bed's Docker engine and registry."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.cli.client import ApiError
from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.peers.dockerd import DockerPeer
from tests.peers.images import build
from tests.peers.ollama import LICENSE, MODEL, PARAMS, TEMPLATE, push_model
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer

pytestmark = pytest.mark.docker

SEED = json.loads((Path(__file__).resolve().parents[1] / "data" / "seed-job.json").read_text())
TINYLLAMA: dict[str, bytes | Content] = {
    "config.json": b'{"architectures": ["LlamaForCausalLM"]}',
    "generation_config.json": b"{}",
    "model.safetensors": Content.generated(3 * 1024 * 1024, seed=900),
    "tokenizer.json": b'{"version": "1.0"}',
    "tokenizer_config.json": b"{}",
    "special_tokens_map.json": b"{}",
    "README.md": b"# TinyLlama stand-in\n",
}


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory,
    docker_peer: DockerPeer,
    hub: FakeHub,
    registry: RegistryPeer,
    s3: S3Peer,
) -> Iterator[DaemonProcess]:
    hub.commit("TinyLlama/TinyLlama-1.1B-Chat-v1.0", dict(TINYLLAMA))
    config: dict[str, dict[str, Any]] = {
        # Pulled by the daemon through the test registry: an engine's own mirror falls back
        # to Docker Hub for an image it lacks, and nothing may leave loopback.
        **docker_peer.daemon_config(registry.host),
        "ollama": {"registry": registry.url},
        "s3": {"endpoint_url": s3.url, **_s3_keys(s3)},
    }
    process = DaemonProcess(tmp_path_factory.mktemp("jobs"), config, env={"HF_ENDPOINT": hub.url})
    process.start()
    yield process
    assert process.stop() == 0


def _s3_keys(s3: S3Peer) -> dict[str, str]:
    return {
        "access_key_id": s3.access_key,
        "secret_access_key": s3.secret_key,
        "region": "us-east-1",
    }


def run_job(
    daemon: DaemonProcess, definition: dict[str, Any], timeout: float = 120
) -> dict[str, Any]:
    job = daemon.client().request("POST", "/v1/jobs", body=definition)
    return wait_job(daemon, job["id"], timeout)


def wait_job(daemon: DaemonProcess, job_id: str, timeout: float = 120) -> dict[str, Any]:
    return daemon.wait_job(job_id, timeout)


def logs(
    daemon: DaemonProcess, job_id: str, op: str | None = None, stream: str | None = None
) -> str:
    return daemon.job_logs(job_id, op, stream)


def job(*ops: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": "0.1", "type": "container", "ops": list(ops), **top}


def run(op_id: str, cmd: Any, image: str = "ubuntu", **args: Any) -> dict[str, Any]:
    return {"type": "container/run", "id": op_id, "args": {"image": image, "cmd": cmd, **args}}


def test_the_seed_example_runs_unchanged(daemon: DaemonProcess) -> None:
    record = run_job(daemon, SEED)
    assert record["state"] == "completed", json.dumps(record["ops"], indent=1)
    [op] = record["ops"]
    assert op["exit_code"] == 0
    assert op["resources"][0]["source"] == "hf://TinyLlama/TinyLlama-1.1B-Chat-v1.0@main"
    assert op["warnings"] == ["gpu: true, but docker.gpu = none: running without a GPU"]
    listed = logs(daemon, record["id"]).split()
    assert sorted(listed) == sorted(TINYLLAMA)
    assert op["timings"]["prepare_seconds"] is not None
    assert op["timings"]["run_seconds"] is not None


def test_commands_environment_work_dir_and_entrypoint(daemon: DaemonProcess) -> None:
    record = run_job(
        daemon,
        job(
            run(
                "string",
                "echo $GREETING from $NOSANA_ID in $(pwd)",
                env={"GREETING": "hi"},
                work_dir="/tmp",
            ),
            run("list", ["echo", "$NOT_EXPANDED"]),
            run("entry", ["-c", "echo via entrypoint"], entrypoint="/bin/sh"),
        ),
    )
    assert record["state"] == "completed", json.dumps(record["ops"], indent=1)
    assert logs(daemon, record["id"], "string") == f"hi from {record['id']} in /tmp\n"
    assert logs(daemon, record["id"], "list") == "$NOT_EXPANDED\n"
    assert logs(daemon, record["id"], "entry") == "via entrypoint\n"


def test_stdout_and_stderr_stay_apart_and_results_are_extracted(daemon: DaemonProcess) -> None:
    record = run_job(
        daemon,
        job(
            {
                **run("talk", "echo 'score=42'; echo 'oops' >&2; echo 'score=7'"),
                "results": {
                    "scores": "score=(\\d+)",
                    "errors": {"regex": "oops", "logType": ["stderr"]},
                },
            }
        ),
    )
    assert logs(daemon, record["id"], stream="stdout") == "score=42\nscore=7\n"
    assert logs(daemon, record["id"], stream="stderr") == "oops\n"
    # As Nosana's node reads them: each line's first match, whole, then its groups.
    assert record["ops"][0]["results"] == {
        "scores": ["score=42", "42", "score=7", "7"],
        "errors": ["oops"],
    }


def test_following_a_long_output_gives_every_line_once(daemon: DaemonProcess) -> None:
    script = "seq 1 20000; sleep 1; seq 20001 40000 >&2; seq 40001 60000"
    submitted = daemon.client().request("POST", "/v1/jobs", body=job(run("long", script)))
    followed = daemon.client().stream_lines(
        f"/v1/jobs/{submitted['id']}/logs", op="long", follow=True
    )
    numbers = [int(line) for line in followed]  # from before the op started to its end
    assert sorted(numbers) == list(range(1, 60001))  # every line, none twice
    stderr = [n for n in numbers if 20000 < n <= 40000]
    stdout = [n for n in numbers if not 20000 < n <= 40000]
    assert stderr == sorted(stderr)
    assert stdout == sorted(stdout)
    assert wait_job(daemon, submitted["id"])["state"] == "completed"


def test_a_group_runs_concurrently_and_depends_on_orders(daemon: DaemonProcess) -> None:
    record = run_job(
        daemon,
        job(
            {
                **run("a", "cut -d' ' -f1 /proc/uptime; sleep 1; cut -d' ' -f1 /proc/uptime"),
                "execution": {"group": "g"},
            },
            {
                **run("b", "cut -d' ' -f1 /proc/uptime; sleep 1; cut -d' ' -f1 /proc/uptime"),
                "execution": {"group": "g"},
            },
            {**run("c", "cut -d' ' -f1 /proc/uptime"), "execution": {"depends_on": ["a", "b"]}},
        ),
    )
    assert record["state"] == "completed", json.dumps(record["ops"], indent=1)
    a, b, c = (logs(daemon, record["id"], op).split() for op in ("a", "b", "c"))
    assert float(a[0]) < float(b[1])  # a started before b ended,
    assert float(b[0]) < float(a[1])  # and b before a ended: they overlapped
    assert float(c[0]) >= max(float(a[1]), float(b[1]))


def test_a_failing_op_fails_the_job_and_later_ops_do_not_start(daemon: DaemonProcess) -> None:
    record = run_job(daemon, job(run("ok", "true"), run("bad", "exit 3"), run("never", "true")))
    assert record["state"] == "failed"
    states = {op["id"]: (op["state"], op["exit_code"]) for op in record["ops"]}
    assert states == {"ok": ("completed", 0), "bad": ("failed", 3), "never": ("stopped", None)}
    assert record["ops"][2]["error"].startswith("not started")
    assert "exited with code 3" in record["error"]
    assert "killed" not in record["error"]


def test_an_op_killed_by_a_signal_says_which(daemon: DaemonProcess) -> None:
    # The main process dies of SIGKILL and the shell reports it as 128 + 9, as Docker does
    # for a killed container (PID 1 itself cannot be sent SIGKILL from inside).
    record = run_job(daemon, job(run("killed", "sh -c 'kill -KILL $$'; exit $?")))
    assert record["ops"][0]["exit_code"] == 137
    assert record["ops"][0]["error"] == "exited with code 137 (killed by SIGKILL)"


def test_a_missing_image_or_resource_fails_with_the_reason(daemon: DaemonProcess) -> None:
    no_image = run_job(daemon, job(run("x", "true", image="nosana/does-not-exist:1")))
    assert no_image["state"] == "failed"
    assert "nosana/does-not-exist:1" in no_image["ops"][0]["error"]
    no_repo = run_job(
        daemon,
        job(run("x", "true", resources=[{"type": "HF", "repo": "org/missing", "target": "/m"}])),
    )
    assert no_repo["state"] == "failed"
    assert "hf://org/missing: no such repo" in no_repo["ops"][0]["error"]


def test_mounts_are_read_only_and_the_store_is_unchanged(daemon: DaemonProcess) -> None:
    resources = [{"type": "HF", "repo": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "target": "/m"}]
    record = run_job(daemon, job(run("w", "echo evil > /m/config.json", resources=resources)))
    assert record["state"] == "failed"
    assert "Read-only file system" in logs(daemon, record["id"])
    view = Path(record["ops"][0]["resources"][0]["path"])
    assert (view / "config.json").read_bytes() == TINYLLAMA["config.json"]


def test_allow_write_gives_a_writable_layer_and_the_store_is_unchanged(
    daemon: DaemonProcess, s3: S3Peer
) -> None:
    s3.bucket("jobs-rw", {"data/input.txt": b"original\n"})
    resources = [{"type": "S3", "url": "s3://jobs-rw/data", "target": "/data", "allowWrite": True}]
    record = run_job(
        daemon,
        job(
            run(
                "rw",
                "echo changed > /data/input.txt; echo new > /data/out.txt; cat /data/*",
                resources=resources,
            )
        ),
    )
    assert record["state"] == "completed", json.dumps(record["ops"], indent=1)
    assert logs(daemon, record["id"]) == "changed\nnew\n"
    view = Path(record["ops"][0]["resources"][0]["path"])
    assert (view / "input.txt").read_bytes() == b"original\n"
    assert not (view / "out.txt").exists()


def test_gpu_none_all_and_auto(tmp_path: Path, docker_peer: DockerPeer) -> None:
    definition = job(run("gpu", "true", gpu=True))
    for policy in ("all", "auto"):
        process = DaemonProcess(
            tmp_path / policy, {"docker": {"host": docker_peer.host, "gpu": policy}}
        )
        process.start()
        try:
            record = run_job(process, definition)
        finally:
            process.stop()
        assert record["state"] == "failed"
        op = record["ops"][0]
        if policy == "all":  # the request reaches the engine, which cannot honour it here
            assert op["device_requests"][0]["Capabilities"] == [["gpu"]]
            assert op["device_requests"][0]["Count"] == -1
            assert "could not give this op a GPU" in op["error"]
        else:
            assert "no NVIDIA runtime or CDI GPUs" in op["error"]
            assert op["device_requests"] == []


def test_stop_a_running_job(daemon: DaemonProcess, docker_peer: DockerPeer) -> None:
    submitted = daemon.client().request("POST", "/v1/jobs", body=job(run("sleepy", "sleep 300")))
    deadline = time.monotonic() + 30
    while daemon.client().get(f"/v1/jobs/{submitted['id']}")["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    started = time.monotonic()
    stopped = daemon.client().request("POST", f"/v1/jobs/{submitted['id']}/stop")
    assert stopped["state"] == "stopped"
    assert time.monotonic() - started < 15
    client = docker_peer.client()
    assert (
        client.containers.list(
            all=True, filters={"label": f"io.nosana-cache.job={submitted['id']}"}
        )
        == []
    )
    with pytest.raises(ApiError) as again:
        daemon.client().request("POST", f"/v1/jobs/{submitted['id']}/stop")
    assert again.value.status == 409


def test_the_second_run_is_all_hits_with_no_upstream_request_and_no_pull(
    daemon: DaemonProcess, hub: FakeHub, docker_peer: DockerPeer
) -> None:
    definition = job(
        run(
            "twice",
            "ls /m",
            image="nosana/multi:1.0",
            resources=[
                {"type": "HF", "repo": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "target": "/m"}
            ],
        )
    )
    first = run_job(daemon, definition)
    assert first["state"] == "completed", first
    hub_before = hub.traffic.total()
    second_started_ns = time.time_ns()
    second = run_job(daemon, definition)
    assert second["state"] == "completed"
    op = second["ops"][0]
    assert op["image"]["hit"] is True
    assert all(r["hit"] for r in op["resources"])
    assert op["cache"] == {"hits": 2, "misses": 0, "bytes_fetched": 0}
    assert hub.traffic.total() == hub_before
    client = docker_peer.client()
    events = client.events(
        since=second_started_ns // 10**9, until=int(time.time()) + 1, decode=True
    )
    pulls = [e for e in events if e.get("Action") == "pull" and e["timeNano"] >= second_started_ns]
    assert pulls == []


def test_an_ollama_resource_mounts_at_the_default_target(
    daemon: DaemonProcess, registry: RegistryPeer
) -> None:
    push_model(
        registry.url,
        "library/jobmodel",
        "latest",
        {MODEL: b"weights", TEMPLATE: b"t", PARAMS: b"{}", LICENSE: b"MIT"},
    )
    record = run_job(
        daemon,
        job(
            run(
                "o",
                "find /root/.ollama/models -type f | sort",
                resources=[{"type": "Ollama", "model": "jobmodel"}],
            )
        ),
    )
    assert record["state"] == "completed", json.dumps(record["ops"], indent=1)
    lines = logs(daemon, record["id"]).split()
    # The model's own registry name, not the host it was pulled from (ollama.registry here).
    assert "/root/.ollama/models/manifests/registry.ollama.ai/library/jobmodel/latest" in lines
    assert sum(1 for line in lines if "/blobs/sha256-" in line) == 5


def test_volumes_are_shared_between_ops_and_ports_are_published(daemon: DaemonProcess) -> None:
    record = run_job(
        daemon,
        job(
            {"type": "container/create-volume", "id": "vol", "args": {"name": "shared"}},
            run(
                "write", "echo kept > /shared/file", volumes=[{"name": "shared", "dest": "/shared"}]
            ),
            run(
                "read",
                "sleep 1; cat /shared/file",
                volumes=[{"name": "shared", "dest": "/shared"}],
                expose=8080,
            ),
        ),
    )
    assert record["state"] == "completed", json.dumps(record["ops"], indent=1)
    assert logs(daemon, record["id"], "read") == "kept\n"
    host = record["ops"][2]["ports"]["8080/tcp"]
    assert host.startswith("127.0.0.1:")


def test_any_op_id_nosana_allows_names_its_containers_volumes_and_logs_safely(
    daemon: DaemonProcess, docker_peer: DockerPeer
) -> None:
    """Op ids are any text without a space (gpt-oss:120b in Nosana's templates): ids that are
    not names (`..`, `a/b`, unicode, the empty string) and volumes whose names differ only in
    such characters stay apart, and an earlier op's results are found by such an id."""
    after = {"execution": {"depends_on": ["vol:1", "vol/2"]}}
    record = run_job(
        daemon,
        job(
            {"type": "container/create-volume", "id": "vol:1", "args": {"name": "a:b"}},
            {"type": "container/create-volume", "id": "vol/2", "args": {"name": "a_b"}},
            {
                **run(
                    "gpt-oss:120b",
                    "echo answer=42; echo kept > /v/file",
                    volumes=[{"name": "a:b", "dest": "/v"}],
                ),
                "results": {"answer": "(?<=answer=)\\d+"},
                **after,
            },
            {
                **run(
                    "..",
                    "echo got %%ops.gpt-oss:120b.results.answer%%; ls /v | wc -l",
                    volumes=[{"name": "a_b", "dest": "/v"}],
                ),
                "execution": {"depends_on": ["gpt-oss:120b"]},
            },
            {**run("a/b", "echo slash"), "execution": {"depends_on": [".."]}},
            {**run("模型", "echo unicode"), "execution": {"depends_on": ["a/b"]}},
            {**run("", "echo empty"), "execution": {"depends_on": ["模型"]}},
        ),
    )
    assert record["state"] == "completed", json.dumps(record["ops"], indent=1)
    assert logs(daemon, record["id"], "gpt-oss:120b") == "answer=42\n"
    assert logs(daemon, record["id"], "..") == "got 42\n0\n"  # a_b is not a:b
    assert logs(daemon, record["id"], "a/b") == "slash\n"
    assert logs(daemon, record["id"], "模型") == "unicode\n"
    assert logs(daemon, record["id"], "") == "empty\n"
    jobs_root = Path(daemon.config["store"]["path"]) / "jobs" / record["id"]
    assert all(path.parent == jobs_root for path in jobs_root.rglob("*.log"))
    engine = docker_peer.client()
    names = {c.name for c in engine.containers.list(all=True)}
    assert not any(record["id"] in name for name in names)  # removed after each op
    assert not [v for v in engine.volumes.list() if record["id"] in v.name]


def test_images_from_private_registries_are_refused_before_any_pull(
    daemon: DaemonProcess, registry: RegistryPeer, docker_peer: DockerPeer
) -> None:
    """The test registry is on loopback: named by address or as localhost it is refused, as a
    login server on a private address is; through the configured mirror (`ubuntu`) it works."""
    port = registry.host.rsplit(":", 1)[1]
    engine = docker_peer.client()
    refused = {
        f"127.0.0.1:{port}/library/ubuntu:latest": None,
        f"localhost:{port}/library/ubuntu:latest": None,
        "ubuntu": {"docker": {"username": "u", "password": "p", "server": "10.20.30.40:5000"}},
    }
    for image, authentication in refused.items():
        args = {"authentication": authentication} if authentication else {}
        record = run_job(daemon, job(run("guarded", "echo ran", image=image, **args)))
        assert record["state"] == "failed", record
        error = record["ops"][0]["error"]
        assert "private, loopback or link-local" in error, error
        assert "security.allow_private_urls" in error, error
        assert record["ops"][0].get("image") is None  # no entry, no pull
        assert not engine.images.list(name=image.split(":latest")[0]) or image == "ubuntu"
    record = run_job(daemon, job(run("mirrored", "echo ran")))
    assert record["state"] == "completed", json.dumps(record["ops"], indent=1)


def test_invalid_jobs_are_400_with_locations(daemon: DaemonProcess) -> None:
    bad = job(run("a", "true", gpus=1), {**run("a", "true")})
    with pytest.raises(ApiError) as caught:
        daemon.client().request("POST", "/v1/jobs", body=bad)
    assert caught.value.status == 400
    locations = {e["loc"] for e in caught.value.problem["errors"]}
    assert locations == {"ops[0].args.gpus"}
    dup = job(run("a", "true"), run("a", "true"))
    with pytest.raises(ApiError) as duplicate:
        daemon.client().request("POST", "/v1/jobs", body=dup)
    assert duplicate.value.problem["errors"][0] == {
        "loc": "ops[1].id",
        "msg": "duplicate op id 'a'",
    }


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_a_daemon_restart_during_a_job_reattaches_to_its_container(
    tmp_path: Path, docker_peer: DockerPeer, signal_name: str
) -> None:
    import signal

    config: dict[str, dict[str, Any]] = {"docker": {"host": docker_peer.host}}
    first = DaemonProcess(tmp_path, config).start()
    submitted = first.client().request(
        "POST",
        "/v1/jobs",
        body=job(run("long", "echo before; sleep 4; echo after"), run("next", "echo next")),
    )
    deadline = time.monotonic() + 30
    while not logs(first, submitted["id"], "long"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first.stop(getattr(signal, signal_name))
    client = docker_peer.client()
    running = client.containers.list(filters={"label": f"io.nosana-cache.job={submitted['id']}"})
    assert len(running) == 1  # the daemon went, the job's container did not
    second = DaemonProcess(tmp_path, config, port=first.port).start()
    try:
        record = wait_job(second, submitted["id"])
        assert record["state"] == "completed", json.dumps(record["ops"], indent=1)
        assert logs(second, submitted["id"], "long") == "before\nafter\n"
        assert logs(second, submitted["id"], "next") == "next\n"
    finally:
        second.stop()


def test_a_container_created_but_not_started_when_the_daemon_died_is_started_on_restart(
    tmp_path: Path, docker_peer: DockerPeer
) -> None:
    """A kill between creating an op's container and starting it leaves a record that names a
    container that never ran (a wait on it answers 0 at once): the next daemon starts it.
    The state is made by hand (a kill cannot be aimed that precisely): the record is pointed
    at a container created, with the op's labels, and not started."""
    import signal

    config: dict[str, dict[str, Any]] = {"docker": {"host": docker_peer.host}}
    first = DaemonProcess(tmp_path, config).start()
    submitted = first.client().request("POST", "/v1/jobs", body=job(run("late", "sleep 300")))
    job_id = submitted["id"]
    engine = docker_peer.client()
    deadline = time.monotonic() + 30
    while not engine.containers.list(filters={"label": f"io.nosana-cache.job={job_id}"}):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first.stop(signal.SIGKILL)
    [started] = engine.containers.list(filters={"label": f"io.nosana-cache.job={job_id}"})
    created = engine.containers.create(
        "ubuntu", ["/bin/sh", "-c", "echo ran"], labels=started.labels
    )
    started.remove(force=True)
    jobs_db = Path(first.config["store"]["path"]) / "jobs.sqlite"
    with sqlite3.connect(jobs_db) as conn:
        [(text,)] = conn.execute("SELECT record FROM jobs WHERE id = ?", (job_id,))
        record = json.loads(text)
        record["ops"][0]["container_id"] = created.id
        conn.execute("UPDATE jobs SET record = ? WHERE id = ?", (json.dumps(record), job_id))
    second = DaemonProcess(tmp_path, config, port=first.port).start()
    try:
        ended = wait_job(second, job_id)
        assert ended["state"] == "completed", json.dumps(ended["ops"], indent=1)
        assert logs(second, job_id, "late") == "ran\n"
    finally:
        second.stop()


def test_the_cli_submits_follows_and_exits_with_the_outcome(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    followed = daemon.cli("jobs", "submit", str(seed), "--follow")
    assert followed.returncode == 0, followed.stderr
    assert sorted(followed.stdout.split()[: len(TINYLLAMA)]) == sorted(TINYLLAMA)
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps(job(run("bad", "echo no; exit 4"))))
    failed = daemon.cli("jobs", "submit", str(failing), "--wait", "--json")
    assert failed.returncode == 1
    record = json.loads(failed.stdout)
    assert record["ops"][0]["exit_code"] == 4
    listing = daemon.cli("jobs", "ls")
    assert record["id"] in listing.stdout
    shown = daemon.cli("jobs", "show", record["id"])
    assert "bad: failed exit 4" in shown.stdout
    assert daemon.cli("jobs", "logs", record["id"]).stdout == "no\n"
    assert json.loads(daemon.cli("jobs", "ls", "--json", "--state", "failed").stdout)["jobs"]
    stopped = daemon.cli("jobs", "stop", record["id"])
    assert stopped.returncode == 1
    assert "already ended" in stopped.stderr


def test_each_resource_mounts_at_its_own_target_whichever_arrives_first(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    slow = Content.generated(2 * 1024 * 1024, seed=905)
    hub.commit("order/slow", {"name": b"slow\n", "w.safetensors": slow})
    hub.commit("order/fast", {"name": b"fast\n"})
    hub.set_faults(slow, Faults(stall_after=0, stall_seconds=1.0, stall_times=1))
    resources = [
        {"type": "HF", "repo": "order/slow", "target": "/a"},
        {"type": "HF", "repo": "order/fast", "target": "/b"},
    ]
    record = run_job(daemon, job(run("order", "cat /a/name /b/name", resources=resources)))
    assert record["state"] == "completed", json.dumps(record["ops"], indent=1)
    assert logs(daemon, record["id"], "order") == "slow\nfast\n"


def test_a_daemon_never_reaps_the_containers_of_another_daemon_on_its_engine(
    daemon: DaemonProcess, tmp_path: Path, docker_peer: DockerPeer
) -> None:
    """Two daemons on one engine (this test bed's, an operator trying a second store): each
    one's reaper removes only what it made. It used to remove every container of a job it did
    not know, other daemons' running jobs included."""
    submitted = daemon.client().request("POST", "/v1/jobs", body=job(run("keep", "sleep 300")))
    job_id = submitted["id"]
    engine = docker_peer.client()
    deadline = time.monotonic() + 30
    while daemon.client().get(f"/v1/jobs/{job_id}")["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    config = {"docker": {"host": docker_peer.host}, "store": {"sweep_interval": "1s"}}
    other = DaemonProcess(tmp_path, config).start()
    try:
        deadline = time.monotonic() + 30
        while other.client().get("/v1/status")["scheduler"]["container-reaper"]["runs"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        other.stop()
    assert engine.containers.list(filters={"label": f"io.nosana-cache.job={job_id}"})
    assert daemon.client().get(f"/v1/jobs/{job_id}")["state"] == "running"
    assert daemon.client().request("POST", f"/v1/jobs/{job_id}/stop")["state"] == "stopped"


def test_ports_are_published_on_the_address_the_operator_sets(
    tmp_path: Path, docker_peer: DockerPeer
) -> None:
    config = {"docker": {"host": docker_peer.host, "publish_host": "127.0.0.2"}}
    elsewhere = DaemonProcess(tmp_path, config).start()
    serve = "mkdir /www && echo up > /www/index.html && httpd -f -p 8080 -h /www"
    try:
        job_id = elsewhere.client().request(
            "POST", "/v1/jobs", body=job(run("web", serve, expose=8080))
        )["id"]
        deadline = time.monotonic() + 30
        while not (ports := elsewhere.client().get(f"/v1/jobs/{job_id}")["ops"][0]["ports"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        host, _, port = ports["8080/tcp"].rpartition(":")
        assert host == "127.0.0.2"
        deadline = time.monotonic() + 30
        while True:  # until httpd listens in the container
            try:
                with urllib.request.urlopen(f"http://127.0.0.2:{port}/", timeout=5) as answer:
                    assert answer.read() == b"up\n"
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        stopped = elsewhere.client().request("POST", f"/v1/jobs/{job_id}/stop")
        assert stopped["state"] == "stopped"
    finally:
        elsewhere.stop()


def test_a_stopped_op_has_its_results_too(daemon: DaemonProcess) -> None:
    """As on Nosana's node, whose ops are read for results whichever way they end."""
    talk = {**run("talk", "echo 'port=8080'; sleep 300"), "results": {"port": "port=(\\d+)"}}
    job_id = daemon.client().request("POST", "/v1/jobs", body=job(talk))["id"]
    deadline = time.monotonic() + 30
    while logs(daemon, job_id, "talk") != "port=8080\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    stopped = daemon.client().request("POST", f"/v1/jobs/{job_id}/stop")
    assert stopped["state"] == "stopped"
    assert stopped["ops"][0]["results"] == {"port": ["port=8080", "8080"]}


def test_a_dry_run_plans_the_job_and_changes_nothing(
    daemon: DaemonProcess, hub: FakeHub, docker_peer: DockerPeer, registry: RegistryPeer
) -> None:
    """Entries, jobs, upstream requests and pulls are counted before and after: the same."""
    engine = docker_peer.client()
    build(engine, f"{registry.host}/nosana/planned:1")  # an image nothing has pulled here
    engine.images.push(f"{registry.host}/nosana/planned", tag="1")
    engine.images.remove(f"{registry.host}/nosana/planned:1", force=True)
    hub.commit("plan/cached", {"config.json": b"{}"})
    broken = Content.generated(3 * 1024 * 1024, seed=907)
    hub.commit("plan/known", {"a.json": b"{}", "w.safetensors": broken})
    hub.commit("plan/never", {"config.json": b"{}"})
    hub.set_faults(broken, Faults(corrupt=True))
    client = daemon.client()
    client.request(
        "POST", "/v1/resources", body={"type": "HF", "repo": "plan/cached"}, params={"wait": True}
    )
    with pytest.raises(ApiError):  # fails on the corrupt file: the store knows its size
        client.request(
            "POST",
            "/v1/resources",
            body={"type": "HF", "repo": "plan/known"},
            params={"wait": True},
        )
    definition = job(
        {"type": "container/create-volume", "id": "vol", "args": {"name": "scratch"}},
        run(
            "planned",
            "ls /m",
            image="nosana/planned:1",
            expose=8080,
            volumes=[{"name": "scratch", "dest": "/scratch"}],
            resources=[
                {"type": "HF", "repo": "plan/cached", "target": "/m"},
                {"type": "HF", "repo": "plan/known", "target": "/k"},
                {"type": "HF", "repo": "plan/never", "target": "/n"},
            ],
        ),
    )

    def counted() -> tuple[int, int, int]:
        return (
            len(client.get("/v1/resources")["resources"]),
            len(client.get("/v1/jobs")["jobs"]),
            hub.traffic.total(),
        )

    before, started_ns = counted(), time.time_ns()
    plan = client.request("POST", "/v1/jobs", body=definition, params={"dry_run": True})
    assert counted() == before
    events = engine.events(since=started_ns // 10**9, until=int(time.time()) + 1, decode=True)
    assert [e for e in events if e.get("Action") == "pull" and e["timeNano"] >= started_ns] == []

    assert (plan["valid"], plan["network"], plan["complete"]) == (True, False, False)
    vol, planned = plan["ops"]
    assert (vol["image"], vol["mounts"]) == (None, [])
    image = planned["image"]
    assert (image["cached"], image["in_engine"], image["bytes_to_fetch"]) == (False, False, None)
    cached, known, never = planned["resources"]
    assert cached["cached"] is True
    assert cached["bytes_to_fetch"] == 0
    assert cached["expires_at"] is not None
    assert (known["cached"], known["bytes_to_fetch"]) == (False, broken.size)
    assert (never["cached"], never["bytes_to_fetch"], never["entry_id"]) == (False, None, None)
    assert plan["bytes_to_fetch"] == broken.size
    mounts = {m["target"]: m for m in planned["mounts"]}
    assert mounts["/m"]["source"].endswith(f"/views/{cached['entry_id']}")
    assert mounts["/m"]["read_only"] is True
    assert mounts["/k"]["source"] is None  # its entry is known once fetched
    assert mounts["/scratch"] == {
        "target": "/scratch",
        "kind": "volume",
        "source": "scratch",
        "read_only": False,
    }
    assert planned["ports"] == [8080]

    ran = run_job(daemon, job(run("pull", "true", image="nosana/planned:1")))
    assert ran["state"] == "completed", ran
    again = client.request("POST", "/v1/jobs", body=definition, params={"dry_run": True})
    image = again["ops"][1]["image"]
    assert (image["cached"], image["in_engine"], image["bytes_to_fetch"]) == (True, True, 0)
    assert image["expires_at"] is not None


def test_an_invalid_job_is_refused_by_the_dry_run_and_jobs_check(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    bad = job(run("a", "true", gpus=1))
    with pytest.raises(ApiError) as caught:
        daemon.client().request("POST", "/v1/jobs", body=bad, params={"dry_run": True})
    assert caught.value.status == 400
    assert [e["loc"] for e in caught.value.problem["errors"]] == ["ops[0].args.gpus"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    refused = daemon.cli("jobs", "check", str(tmp_path / "bad.json"))
    assert refused.returncode == 1
    assert "ops[0].args.gpus: unknown property" in refused.stderr
    (tmp_path / "good.json").write_text(json.dumps(job(run("a", "true"))))
    checked = daemon.cli("jobs", "check", str(tmp_path / "good.json"), "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["valid"] is True
    text = daemon.cli("jobs", "check", str(tmp_path / "good.json"))
    assert text.stdout.startswith("valid: 1 op(s)")
