"""The fence around job containers, on the test engine, against hosts in network namespaces.

Two hosts stand behind veth pairs (`tests.peers.netns`): a "public" one at 203.0.113.10 and
one on the operator's LAN at 10.213.7.10 and .11, each answering HTTP. A host service listens
on every address of this host. A job's container probes each (busybox wget, which fails at
once on the fence's reject) and prints what it reached. Without the fence it reaches all of
them, which shows the probes can succeed; with it, only the public host, the daemon's Hub
endpoint and what `docker.fence_allow` opens.

These tests change the host's firewall (as the daemon does on a real host); each takes the
fence down again with `nosana-cache fence --remove`, and checks that nothing is left.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.cli.client import ApiError
from tests.daemon_process import DaemonProcess
from tests.fakes.hf_hub import FakeHub
from tests.peers.dockerd import DockerPeer
from tests.peers.firewall import fence_rules
from tests.peers.netns import NetnsHost
from tests.peers.procs import free_port
from tests.peers.registry import RegistryPeer

pytestmark = pytest.mark.docker

WITHOUT_NET_ADMIN = ["setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin"]


@pytest.fixture(scope="module")
def public() -> Iterator[NetnsHost]:
    host = NetnsHost("pub", "203.0.113.0/24", ["203.0.113.10"]).start()
    yield host
    host.stop()


@pytest.fixture(scope="module")
def lan() -> Iterator[NetnsHost]:
    host = NetnsHost("lan", "10.213.7.0/24", ["10.213.7.10", "10.213.7.11"]).start()
    yield host
    host.stop()


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def host_service() -> Iterator[int]:
    """An HTTP service of this host's, on every address it has (as operators' often are)."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_daemon(
    tmp_path: Path, docker_peer: DockerPeer, registry: RegistryPeer, hub: FakeHub
) -> Iterator[Any]:
    made: list[DaemonProcess] = []

    def make(wrapper: list[str] | None = None, **docker: Any) -> DaemonProcess:
        config: dict[str, dict[str, Any]] = docker_peer.daemon_config(registry.host)
        config["docker"].update(docker)
        config["huggingface"] = {"endpoint": hub.url, "mirror_port": free_port()}
        root = tmp_path / f"daemon-{len(made)}"
        daemon = DaemonProcess(root, config, wrapper=wrapper).start()
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.stop()
    if made:
        removed = privileged_cli(made[0], "fence", "--remove")
        assert removed.returncode == 0, removed.stderr
    assert not fence_rules(), fence_rules()


def privileged_cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI on the daemon's settings, as root with every capability (as systemd's `+`)."""
    command = [sys.executable, "-m", "daemon", "--config", str(daemon.config_path), *args]
    return subprocess.run(command, capture_output=True, text=True, env=daemon.env, timeout=60)


def probes(
    daemon: DaemonProcess,
    docker_peer: DockerPeer,
    public: NetnsHost,
    lan: NetnsHost,
    host_port: int,
) -> dict[str, str]:
    """Run a job that tries every destination; what it reached and what was blocked."""
    bridge = docker_peer.client().api.inspect_network("bridge")["IPAM"]["Config"][0]["Gateway"]
    targets = {
        "public": public.url(),
        "lan": lan.url("10.213.7.10"),
        "lan-allowed": lan.url("10.213.7.11"),
        "host-bridge": f"http://{bridge}:{host_port}/",
        "host-lan-address": f"http://{lan.gateway}:{host_port}/",
        "host-public-address": f"http://{public.gateway}:{host_port}/",
        "metadata": "http://169.254.169.254/",
    }
    # busybox's wget crashes on its own -T here: `timeout` bounds it instead.
    script = (
        'probe() { if timeout 5 wget -q -O /dev/null "$2" 2>/dev/null; then echo "$1 reached"; '
    )
    script += 'else echo "$1 blocked"; fi; }; '
    script += "".join(f"probe {name} {url}; " for name, url in targets.items())
    script += 'probe hub "${HF_ENDPOINT%/hf}/healthz"'
    definition = {
        "version": "0.1",
        "type": "container",
        "ops": [
            {"type": "container/run", "id": "probe", "args": {"image": "ubuntu", "cmd": script}}
        ],
    }
    job = daemon.client().request("POST", "/v1/jobs", body=definition)
    record = daemon.wait_job(job["id"], timeout=120)
    assert record["state"] == "completed", record
    lines = daemon.job_logs(record["id"]).split("\n")
    return dict(line.split(" ", 1) for line in lines if line.strip())


def test_without_the_fence_a_job_reaches_the_lan_and_the_host(
    make_daemon: Any, docker_peer: DockerPeer, public: NetnsHost, lan: NetnsHost, host_service: int
) -> None:
    daemon = make_daemon(fence="off")
    assert daemon.client().get("/v1/status")["fence"]["state"] == "off"
    privileged_cli(daemon, "fence", "--remove")  # a fence an earlier, killed run left
    assert not fence_rules()
    reached = probes(daemon, docker_peer, public, lan, host_service)
    assert reached["public"] == reached["lan"] == reached["host-bridge"] == "reached", reached
    assert reached["host-lan-address"] == reached["hub"] == "reached", reached


def test_a_fenced_job_reaches_the_internet_the_hub_endpoint_and_what_is_allowed(
    make_daemon: Any, docker_peer: DockerPeer, public: NetnsHost, lan: NetnsHost, host_service: int
) -> None:
    daemon = make_daemon(fence="auto", fence_allow=["10.213.7.11/32"])
    fence = daemon.client().get("/v1/status")["fence"]
    assert fence["state"] == "fenced", fence
    assert fence["allow"] == ["10.213.7.11/32"]
    assert any("-A DOCKER-USER -i ncj-+ -j NOSANA-CACHE-FENCE" in r for r in fence_rules())
    reached = probes(daemon, docker_peer, public, lan, host_service)
    assert reached == {
        "public": "reached",
        "lan": "blocked",
        "lan-allowed": "reached",
        "host-bridge": "blocked",
        "host-lan-address": "blocked",
        "host-public-address": "blocked",
        "metadata": "blocked",
        "hub": "reached",
    }
    status = daemon.cli("status")
    assert "fence    fenced (docker.fence = auto)" in status.stdout, status.stdout
    assert "nosana_cache_fence_up 1.0" in daemon.client()._send("GET", "/metrics").read().decode()


def test_the_fence_is_removed_without_a_trace(make_daemon: Any) -> None:
    daemon = make_daemon(fence="auto")
    assert daemon.client().get("/v1/status")["fence"]["state"] == "fenced"
    stamp = daemon.root / "store" / "fence.json"
    assert stamp.exists()
    assert fence_rules()
    removed = daemon.cli("fence", "--remove")
    assert removed.returncode == 0, removed.stderr
    assert "no rule of it is left" in removed.stdout
    assert not fence_rules()
    assert not stamp.exists()


def test_required_refuses_jobs_until_a_privileged_step_installs_the_fence(
    make_daemon: Any, docker_peer: DockerPeer, public: NetnsHost, lan: NetnsHost, host_service: int
) -> None:
    daemon = make_daemon(WITHOUT_NET_ADMIN, fence="required")
    fence = daemon.client().get("/v1/status")["fence"]
    assert fence["state"] == "unfenced", fence
    assert "CAP_NET_ADMIN" in fence["detail"]
    assert "fence --install" in fence["detail"]
    definition = {
        "version": "0.1",
        "type": "container",
        "ops": [{"type": "container/run", "id": "x", "args": {"image": "ubuntu", "cmd": "true"}}],
    }
    with pytest.raises(ApiError) as refused:
        daemon.client().request("POST", "/v1/jobs", body=definition)
    assert refused.value.status == 503
    assert "docker.fence = required and job containers are unfenced" in str(refused.value)
    assert daemon.client().get("/v1/jobs")["jobs"] == []

    # What the systemd unit's ExecStartPre=+ does: the same settings, with the privilege.
    installed = privileged_cli(daemon, "fence", "--install")
    assert installed.returncode == 0, installed.stderr
    reached = probes(daemon, docker_peer, public, lan, host_service)
    assert reached["public"] == reached["hub"] == "reached", reached
    assert reached["lan"] == reached["host-bridge"] == "blocked", reached
    fence = daemon.client().get("/v1/status")["fence"]
    assert fence["state"] == "fenced", fence
    assert "installed by `nosana-cache fence --install`" in fence["detail"]


def test_auto_without_privilege_warns_and_says_unfenced(make_daemon: Any) -> None:
    daemon = make_daemon(WITHOUT_NET_ADMIN, fence="auto")
    fence = daemon.client().get("/v1/status")["fence"]
    assert fence["state"] == "unfenced", fence
    assert not fence_rules()
    assert "fence.unfenced" in daemon.log()
    status = daemon.cli("status")
    assert "fence    unfenced (docker.fence = auto)" in status.stdout, status.stdout
    assert "nosana_cache_fence_up 0.0" in daemon.client()._send("GET", "/metrics").read().decode()


def test_a_fenced_service_is_checked_published_and_reached_by_its_own_job(
    make_daemon: Any,
) -> None:
    """Health checks and published ports go from the host to the container (replies pass the
    fence), and the ops of one job reach each other on its network."""
    daemon = make_daemon(fence="auto")
    assert daemon.client().get("/v1/status")["fence"]["state"] == "fenced"
    health = {"type": "http", "path": "/health", "method": "GET", "expected_status": 200}
    health["continuous"] = False
    serve = "mkdir -p /www && echo ok > /www/health && httpd -f -p 8080 -h /www"
    expose = [{"port": 8080, "type": "api", "health_checks": [health]}]
    web = {
        "type": "container/run",
        "id": "web",
        "args": {"image": "ubuntu", "cmd": serve, "expose": expose, "aliases": ["model"]},
        "execution": {"group": "up"},
    }
    client = {
        "type": "container/run",
        "id": "client",
        "args": {"image": "ubuntu", "cmd": "wget -qO- http://model:8080/health"},
        "execution": {"group": "up", "depends_on": ["web"]},
    }
    definition = {"version": "0.1", "type": "container", "ops": [web, client]}
    job_id = daemon.client().request("POST", "/v1/jobs", body=definition)["id"]
    deadline = time.monotonic() + 120
    while True:
        record = daemon.client().get(f"/v1/jobs/{job_id}")
        ops = {op["id"]: op for op in record["ops"]}
        if ops["client"]["state"] in ("completed", "failed"):
            break
        assert time.monotonic() < deadline, record
        time.sleep(0.1)
    assert ops["client"]["state"] == "completed", record
    assert daemon.job_logs(job_id, "client") == "ok\n"
    assert ops["web"]["health"] == "healthy", ops["web"]
    url = ops["web"]["endpoints"][0]["url"]
    with urllib.request.urlopen(f"{url}/health", timeout=10) as answer:
        assert answer.read() == b"ok\n"
    daemon.client().request("POST", f"/v1/jobs/{job_id}/stop")


def test_two_engines_on_one_host_keep_their_own_bridges(
    tmp_path: Path, docker_peer: DockerPeer, second_docker_peer: DockerPeer, registry: RegistryPeer
) -> None:
    """The shared network has one name on every engine; its Linux bridge must not: a second
    engine would take the first one's bridge over and re-address it under its containers."""
    bridges = []
    for n, peer in enumerate((docker_peer, second_docker_peer)):
        daemon = DaemonProcess(tmp_path / f"d{n}", peer.daemon_config(registry.host)).start()
        try:
            definition = {
                "version": "0.1",
                "type": "container",
                "ops": [
                    {"type": "container/run", "id": "x", "args": {"image": "ubuntu", "cmd": "true"}}
                ],
            }
            job = daemon.client().request("POST", "/v1/jobs", body=definition)
            assert daemon.wait_job(job["id"])["state"] == "completed"
        finally:
            daemon.stop()
        shared = peer.client().api.inspect_network("nosana-cache-jobs")
        bridges.append(shared["Options"]["com.docker.network.bridge.name"])
        assert shared["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    assert bridges[0] != bridges[1]
    assert all(b.startswith("ncj-") and len(b) <= 15 for b in bridges)
