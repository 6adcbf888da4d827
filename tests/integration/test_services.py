"""Service jobs through the real daemon and the test bed's Docker engine: exposed ports and
their health checks, readiness, ops that depend on a service, aliases on the job's network,
restart policies, and what stays private.

Each service is busybox's httpd in the `ubuntu` stand-in. Where a test needs a service to be
not ready yet, the container waits for a file that the test creates (docker exec) once it has
seen the op starting: the order is the test's, never a race.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.peers.dockerd import DockerPeer
from tests.peers.registry import RegistryPeer

pytestmark = pytest.mark.docker

SERVE = (
    "mkdir -p /www && echo ok > /www/health && echo listening on 8080 && httpd -f -p 8080 -h /www"
)
WAIT_FOR_GO = "while [ ! -f /tmp/go ]; do sleep 0.1; done; "


def check(path: str = "/health", *, continuous: bool = False, **more: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "path": path,
        "method": "GET",
        "expected_status": 200,
        "continuous": continuous,
        **more,
    }


def service(op_id: str, cmd: str, *checks: dict[str, Any], **args: Any) -> dict[str, Any]:
    expose = [{"port": 8080, "type": "api", "health_checks": list(checks)}]
    return {
        "type": "container/run",
        "id": op_id,
        "args": {"image": "ubuntu", "cmd": cmd, "expose": expose, **args},
    }


def run(op_id: str, cmd: str, **args: Any) -> dict[str, Any]:
    return {"type": "container/run", "id": op_id, "args": {"image": "ubuntu", "cmd": cmd, **args}}


def job(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0.1", "type": "container", "ops": list(ops)}


def _config(docker_peer: DockerPeer, registry: RegistryPeer, **jobs: str) -> dict[str, Any]:
    return {**docker_peer.daemon_config(registry.host), "jobs": jobs}


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, docker_peer: DockerPeer, registry: RegistryPeer
) -> Iterator[DaemonProcess]:
    config = _config(docker_peer, registry, health_continuous_interval="0.3s")
    process = DaemonProcess(tmp_path_factory.mktemp("services"), config).start()
    yield process
    assert process.stop() == 0


def until(
    daemon: DaemonProcess, job_id: str, ready: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """The job's record once `ready(record)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = daemon.client().get(f"/v1/jobs/{job_id}")
        if ready(record):
            return record
        assert record["state"] not in ("failed", "completed", "stopped"), record
        assert time.monotonic() < deadline, json.dumps(record, indent=1)
        time.sleep(0.1)


def op(record: dict[str, Any], op_id: str) -> dict[str, Any]:
    return next(o for o in record["ops"] if o["id"] == op_id)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def let_go(docker_peer: DockerPeer, container_id: str) -> None:
    result = docker_peer.client().containers.get(container_id).exec_run(["touch", "/tmp/go"])
    assert result.exit_code == 0


def stop(daemon: DaemonProcess, job_id: str) -> dict[str, Any]:
    stopped: dict[str, Any] = daemon.client().request("POST", f"/v1/jobs/{job_id}/stop")
    return stopped


def test_a_service_is_ready_when_its_check_passes_and_its_dependents_start_then(
    daemon: DaemonProcess, docker_peer: DockerPeer
) -> None:
    web = {
        **service("web", WAIT_FOR_GO + SERVE, check(), aliases=["model-server"]),
        "results": {"listening": "listening on (\\d+)"},
        "execution": {"group": "up"},
    }
    client = {
        **run(
            "client",
            "wget -qO- http://model-server:8080/health; wget -qO- http://%%ops.web.host%%:8080/health",
        ),
        # One group: the next group would wait for this one to end, as on Nosana's node.
        "execution": {"group": "up", "depends_on": ["web"]},
    }
    submitted = daemon.client().request("POST", "/v1/jobs", body=job(web, client))
    job_id = submitted["id"]

    def answered(record: dict[str, Any]) -> bool:
        endpoints = op(record, "web")["endpoints"]
        return bool(endpoints) and endpoints[0]["checks"][0]["passed"] is False

    starting = until(daemon, job_id, answered)
    web_op = op(starting, "web")
    assert web_op["health"] == "starting"
    assert web_op["ready_at"] is None
    assert "http GET /health expects 200" in web_op["health_detail"]
    assert op(starting, "client")["state"] == "queued"  # it waits for the service
    [endpoint] = web_op["endpoints"]
    assert (endpoint["port"], endpoint["type"], endpoint["health"]) == (8080, "api", "starting")
    assert endpoint["address"] == web_op["ports"]["8080/tcp"]
    assert endpoint["url"] == f"http://{endpoint['address']}"

    let_go(docker_peer, web_op["container_id"])
    record = until(daemon, job_id, lambda r: op(r, "client")["state"] == "completed")
    web_op, client_op = op(record, "web"), op(record, "client")
    assert web_op["state"] == "running"  # a service: it runs on
    assert web_op["health"] == "healthy"
    assert web_op["health_detail"] is None
    assert web_op["endpoints"][0]["checks"][0]["passed"] is True
    assert web_op["endpoints"][0]["checks"][0]["answer"] == "200 OK"
    assert web_op["timings"]["ready_seconds"] > 0
    assert client_op["timings"]["run_started_at"] >= web_op["ready_at"]
    assert daemon.job_logs(job_id, "client") == "ok\nok\n"  # by alias, and by host name
    assert get(f"{web_op['endpoints'][0]['url']}/health") == "ok\n"

    stopped = stop(daemon, job_id)
    assert stopped["state"] == "stopped"
    assert op(stopped, "web")["results"] == {"listening": ["listening on 8080", "8080"]}
    engine = docker_peer.client()
    assert not [n for n in engine.networks.list() if job_id in n.name]


def test_a_check_that_never_passes_fails_the_op_with_its_last_answer(
    tmp_path: Path, docker_peer: DockerPeer, registry: RegistryPeer
) -> None:
    config = _config(docker_peer, registry, ready_timeout="2s")
    impatient = DaemonProcess(tmp_path, config).start()
    try:
        never = service("web", SERVE, check("/missing"))
        submitted = impatient.client().request("POST", "/v1/jobs", body=job(never))
        record = impatient.wait_job(submitted["id"])
    finally:
        assert impatient.stop() == 0
    assert record["state"] == "failed"
    web_op = op(record, "web")
    assert web_op["error"].startswith(
        "op web was not ready within 2s (jobs.ready_timeout): port 8080, "
        "http GET /missing expects 200, last answered: 404 Not Found"
    )
    assert record["error"] == web_op["error"]
    assert web_op["ready_at"] is None
    assert web_op["exit_code"] is not None  # its container was stopped


def test_a_failing_continuous_check_marks_the_op_unhealthy_while_it_fails(
    daemon: DaemonProcess, docker_peer: DockerPeer
) -> None:
    watched = service("web", SERVE, check(), check("/live", continuous=True))
    watched["args"]["cmd"] = "mkdir -p /www && echo up > /www/live && " + SERVE
    submitted = daemon.client().request("POST", "/v1/jobs", body=job(watched))
    job_id = submitted["id"]
    healthy = until(daemon, job_id, lambda r: op(r, "web")["health"] == "healthy")
    container = docker_peer.client().containers.get(op(healthy, "web")["container_id"])
    assert container.exec_run(["rm", "/www/live"]).exit_code == 0
    unhealthy = until(daemon, job_id, lambda r: op(r, "web")["health"] == "unhealthy")
    web_op = op(unhealthy, "web")
    assert web_op["health_detail"].startswith(
        "port 8080: http GET /live expects 200: 404 Not Found"
    )
    assert web_op["state"] == "running"  # unhealthy is not an end
    assert web_op["endpoints"][0]["health"] == "unhealthy"
    assert container.exec_run(["sh", "-c", "echo up > /www/live"]).exit_code == 0
    until(daemon, job_id, lambda r: op(r, "web")["health"] == "healthy")
    assert stop(daemon, job_id)["state"] == "stopped"


def test_a_restart_policy_restarts_a_failing_container_until_it_gives_up(
    daemon: DaemonProcess,
) -> None:
    tries = {"policy": "on-failure", "restart_tries": 2}
    failing = run("flaky", "echo run; exit 3", restart_policy=tries)
    record = daemon.wait_job(daemon.client().request("POST", "/v1/jobs", body=job(failing))["id"])
    flaky = op(record, "flaky")
    assert (record["state"], flaky["exit_code"], flaky["restarts"]) == ("failed", 3, 2)
    assert daemon.job_logs(record["id"], "flaky") == "run\nrun\nrun\n"  # every run's output


def test_a_container_restarted_on_failure_can_complete(daemon: DaemonProcess) -> None:
    once = "if [ -f /v/tried ]; then echo second; exit 0; fi; touch /v/tried; echo first; exit 1"
    definition = job(
        {"type": "container/create-volume", "id": "vol", "args": {"name": "state"}},
        run("retry", once, restart_policy="on-failure", volumes=[{"name": "state", "dest": "/v"}]),
    )
    record = daemon.wait_job(daemon.client().request("POST", "/v1/jobs", body=definition)["id"])
    retry = op(record, "retry")
    assert (record["state"], retry["exit_code"], retry["restarts"]) == ("completed", 0, 1)
    assert daemon.job_logs(record["id"], "retry") == "first\nsecond\n"


def test_what_nosanas_node_keeps_private_stays_out_of_listings_and_the_daemons_log(
    daemon: DaemonProcess,
) -> None:
    password = "s3cret-registry-password"
    private = service(
        "web",
        SERVE,
        check(),
        private=True,
        authentication={"docker": {"username": "someone", "password": password}},
    )
    submitted = daemon.client().request("POST", "/v1/jobs", body=job(private))
    job_id = submitted["id"]
    shown = until(daemon, job_id, lambda r: op(r, "web")["health"] == "healthy")
    address = op(shown, "web")["endpoints"][0]["address"]
    assert address
    assert op(shown, "web")["endpoints"][0]["private"] is True
    assert get(f"http://{address}/health") == "ok\n"  # the job's own record has it
    [listed] = [j for j in daemon.client().get("/v1/jobs")["jobs"] if j["id"] == job_id]
    listed_op = op(listed, "web")
    assert listed_op["ports"] == {"8080/tcp": "private"}
    assert listed_op["endpoints"][0]["address"] is None
    assert listed_op["endpoints"][0]["url"] is None
    assert address not in json.dumps(listed)
    stopped = stop(daemon, job_id)
    answers = [
        json.dumps(shown),
        json.dumps(stopped),
        json.dumps(daemon.client().get("/v1/jobs")),
        daemon.job_logs(job_id),
    ]
    assert not [a for a in answers if password in a]
    assert shown["definition"]["ops"][0]["args"]["authentication"]["docker"]["password"] == "***"
    log = daemon.log()
    assert job_id in log  # the daemon did log this job,
    assert password not in log  # but neither its credentials
    assert address not in log  # nor where its private service listens


def test_a_websocket_check_reads_the_handshake(daemon: DaemonProcess) -> None:
    answer = (
        "HTTP/1.1 101 Switching Protocols\\r\\n"
        "Upgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n"
    )
    ws = service(
        "ws",
        f"while true; do printf '{answer}' | nc -l -p 8080; done",
        {"type": "websocket", "expected_response": "101 Switching", "continuous": False},
    )
    ws["args"]["expose"][0]["type"] = "websocket"
    submitted = daemon.client().request("POST", "/v1/jobs", body=job(ws))
    record = until(daemon, submitted["id"], lambda r: op(r, "ws")["health"] == "healthy")
    endpoint = op(record, "ws")["endpoints"][0]
    assert endpoint["url"].startswith("ws://127.0.0.1:")
    assert endpoint["checks"][0]["answer"] == "HTTP/1.1 101 Switching Protocols"
    assert stop(daemon, submitted["id"])["state"] == "stopped"


def test_the_cli_says_when_a_service_is_ready_with_its_urls_and_shows_its_checks(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    definition = tmp_path / "service.json"
    definition.write_text(json.dumps(job(service("web", SERVE, check()))))
    follow = subprocess.Popen(
        daemon.command("jobs", "submit", str(definition), "--follow", "--id", "followed"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=daemon.env,
    )
    try:
        assert follow.stderr is not None
        said = follow.stderr.readline()  # the first line it says is the service's readiness
        assert said.startswith("web: ready in "), said
        record = daemon.client().get("/v1/jobs/followed")
        url = op(record, "web")["endpoints"][0]["url"]
        assert said.rstrip().endswith(f": {url} (api)")
        shown = daemon.cli("jobs", "show", "followed").stdout
        assert "service healthy, ready in " in shown
        assert f"port 8080 (api) → {url}: healthy" in shown
        assert "http GET /health expects 200: passed (200 OK)" in shown
        assert stop(daemon, "followed")["state"] == "stopped"
        assert follow.wait(timeout=60) == 1  # it ended, stopped: not completed
        assert follow.stdout is not None
        assert follow.stdout.read().startswith("listening on 8080\n")  # and its output came
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()


def test_a_service_keeps_its_health_checks_across_a_daemon_restart(
    tmp_path: Path, docker_peer: DockerPeer, registry: RegistryPeer
) -> None:
    """The daemon dies while a service runs (SIGKILL): the next one re-attaches to its
    container, keeps it ready, and runs its continuous checks again."""
    import signal

    config = _config(docker_peer, registry, health_continuous_interval="0.3s")
    first = DaemonProcess(tmp_path, config).start()
    watched = service("web", SERVE, check(), check("/live", continuous=True))
    watched["args"]["cmd"] = "mkdir -p /www && echo up > /www/live && " + SERVE
    job_id = first.client().request("POST", "/v1/jobs", body=job(watched))["id"]
    ready = until(first, job_id, lambda r: op(r, "web")["health"] == "healthy")
    first.stop(signal.SIGKILL)
    second = DaemonProcess(tmp_path, config, port=first.port).start()
    try:
        container = docker_peer.client().containers.get(op(ready, "web")["container_id"])
        assert container.exec_run(["rm", "/www/live"]).exit_code == 0
        unhealthy = until(second, job_id, lambda r: op(r, "web")["health"] == "unhealthy")
        web_op = op(unhealthy, "web")
        assert web_op["ready_at"] == op(ready, "web")["ready_at"]
        assert web_op["endpoints"][0]["address"] == op(ready, "web")["endpoints"][0]["address"]
        assert stop(second, job_id)["state"] == "stopped"
    finally:
        second.stop()
