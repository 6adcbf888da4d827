"""The daemon killed while it pulls images and starts containers, and the Docker engine
restarted under running jobs and pulls.

Promised: every job submitted before a kill ends as it would have (re-attached if its
container was running, prepared anew if it was not), no container of ours is left behind,
and an engine that goes away is a clear error, not a hang, with the daemon reconnecting when
it is back.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.peers.dockerd import DockerPeer
from tests.peers.registry import RegistryPeer

pytestmark = pytest.mark.docker
MANAGED = {"label": "io.nosana-cache.managed=true"}
KILLS = 12


def work(op_id: str, cmd: str, **args: Any) -> dict[str, Any]:
    return {"type": "container/run", "id": op_id, "args": {"image": "ubuntu", "cmd": cmd, **args}}


def job(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0.1", "type": "container", "ops": list(ops)}


def uncache(engine: docker.DockerClient) -> None:
    """Untag `ubuntu` so the next job pulls it (a running container keeps its layers)."""
    for image in engine.images.list(name="ubuntu"):
        for tag in image.tags:
            engine.images.remove(tag, force=True)


def test_kill_9_while_pulling_and_starting_jobs(
    tmp_path: Path,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    hub: FakeHub,
    rng: random.Random,
) -> None:
    hub.commit("chaos/job-model", {"w.safetensors": Content.generated(2 * 1024**2, seed=9700)})
    resource = {"type": "HF", "repo": "chaos/job-model", "target": "/model"}
    config = docker_peer.daemon_config(registry.host)
    env = {"HF_ENDPOINT": hub.url}
    engine = docker_peer.client()
    submitted = []
    port = None
    for _ in range(KILLS):
        if rng.random() < 0.5:  # cold image: the kill may land in the pull
            uncache(engine)
        daemon = DaemonProcess(tmp_path, config, env=env, port=port)
        port = daemon.port
        daemon.start()
        try:
            command = "echo start; ls /model; sleep 1; echo end"
            record = daemon.client().request(
                "POST", "/v1/jobs", body=job(work("work", command, resources=[resource]))
            )
            submitted.append(record["id"])
            time.sleep(rng.uniform(0.0, 2.0))
        finally:
            assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL

    final = DaemonProcess(tmp_path, config, env=env, port=port).start()
    try:
        for job_id in submitted:
            record = final.wait_job(job_id)
            assert record["state"] == "completed", json.dumps(record, indent=1)
            assert final.job_logs(job_id, "work") == "start\nw.safetensors\nend\n"
        deadline = time.monotonic() + 10
        while engine.containers.list(all=True, filters=MANAGED) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert engine.containers.list(all=True, filters=MANAGED) == []
        leases = final.client().get("/v1/resources")["resources"]
        assert all(entry["leases"] == 0 for entry in leases), leases
    finally:
        assert final.stop() == 0


@pytest.fixture
def own_engine(registry: RegistryPeer, docker_peer: DockerPeer) -> Iterator[DockerPeer]:
    """An engine of this test's own, to restart without disturbing the others (the shared
    one is asked for only so the registry holds the test images)."""
    peer = DockerPeer().start()  # no engine-side mirror: the daemon names the registry
    try:
        yield peer
    finally:
        peer.stop()


def test_the_engine_restarted_under_running_jobs_and_pulls(
    tmp_path: Path, own_engine: DockerPeer, registry: RegistryPeer
) -> None:
    config = own_engine.daemon_config(registry.host)
    daemon = DaemonProcess(tmp_path, config).start()
    try:
        client = daemon.client()
        running = client.request(
            "POST", "/v1/jobs", body=job(work("long", "echo up; sleep 30; echo never"))
        )
        deadline = time.monotonic() + 60
        while "up" not in daemon.job_logs(running["id"], "long"):  # the container runs
            assert time.monotonic() < deadline
            time.sleep(0.1)
        own_engine.restart()

        record = daemon.wait_job(running["id"], timeout=60)
        assert record["state"] == "failed", record
        reason = record["ops"][0].get("error") or ""
        # Said, not left running forever: the engine kills its containers as it stops.
        assert "Docker engine" in reason or "killed by SIGKILL" in reason, record
        assert "never" not in daemon.job_logs(running["id"], "long")

        # A pull cut short by the engine going away: it waits for the engine and pulls again.
        engine = own_engine.client()
        uncache(engine)
        pulls_before = daemon.log().count('"image.pulling"')
        pulling = client.request("POST", "/v1/jobs", body=job(work("cold", "echo pulled")))
        deadline = time.monotonic() + 60
        while daemon.log().count('"image.pulling"') == pulls_before:
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.02)
        own_engine.restart()
        record = daemon.wait_job(pulling["id"], timeout=120)
        if "image.pull_retry" in daemon.log():  # the restart cut the pull
            assert record["state"] == "completed", record
            assert daemon.job_logs(pulling["id"], "cold") == "pulled\n"
        else:  # the pull was done first: the container may have met the engine down
            assert record["state"] in ("completed", "failed"), record
            if record["state"] == "failed":
                assert "Docker engine" in record["ops"][0].get("error", ""), record

        # The daemon reconnected: status says so and the next job runs.
        assert client.get("/v1/status")["docker"]["reachable"] is True
        after = client.request("POST", "/v1/jobs", body=job(work("after", "echo fine")))
        assert daemon.wait_job(after["id"])["state"] == "completed"
        assert daemon.job_logs(after["id"], "after") == "fine\n"
    finally:
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()
