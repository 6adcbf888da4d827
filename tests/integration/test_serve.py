"""`nosana-cache serve` as operators run it: start, answer, stop on a signal, refuse bad config."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.cli.client import ApiError, Client
from tests.daemon_process import DaemonProcess
from tests.peers.dockerd import DockerPeer
from tests.peers.firewall import fence_rules


@pytest.mark.docker
def test_serves_health_and_status_with_docker_and_stops_on_sigterm(
    tmp_path: Path, docker_peer: DockerPeer
) -> None:
    daemon = DaemonProcess(tmp_path, {"docker": {"host": docker_peer.host}}).start()
    try:
        assert daemon.client().get("/healthz") == {"status": "ok"}
        status = daemon.client().get("/v1/status")
        assert status["version"]
        assert status["store"]["path"] == str(tmp_path / "store")
        assert status["docker"]["reachable"] is True
        assert status["docker"]["version"].startswith("20.10")
        assert (tmp_path / "store").is_dir()
    finally:
        started = time.monotonic()
        code = daemon.stop(signal.SIGTERM)
    assert code == 0
    assert time.monotonic() - started < 15
    assert '"event": "daemon.stopped"' in daemon.log()


def test_serves_without_docker_and_says_so(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, {"docker": {"host": f"unix://{tmp_path}/no.sock"}}).start()
    try:
        docker = daemon.client().get("/v1/status")["docker"]
        assert docker["reachable"] is False
        assert "not reachable" in docker["error"]
        human = daemon.cli("status")
        assert human.returncode == 0
        assert "unreachable" in human.stdout
    finally:
        assert daemon.stop(signal.SIGINT) == 0


def test_unix_socket_listener(tmp_path: Path) -> None:
    sock = f"/tmp/ncache-test-{tmp_path.name[-20:]}.sock"
    daemon = DaemonProcess(tmp_path, {"api": {"listen": [f"unix:{sock}"]}})
    daemon.start(wait=False)
    try:
        client = Client(f"unix:{sock}", timeout=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                assert client.get("/healthz") == {"status": "ok"}
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        result = daemon.cli("status", "--json")  # the CLI finds the socket in the same config
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["version"]
    finally:
        assert daemon.stop() == 0
    assert not Path(sock).exists()


def test_token_guards_every_route_but_healthz(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, {"api": {"token": "s3cret-token"}}).start()
    try:
        assert daemon.client().get("/healthz") == {"status": "ok"}
        with pytest.raises(ApiError) as caught:
            daemon.client().get("/v1/status")
        assert caught.value.status == 401
        with pytest.raises(ApiError):
            daemon.client(token="wrong").get("/v1/status")
        assert daemon.client(token="s3cret-token").get("/v1/status")["version"]
        assert daemon.cli("status").returncode == 0  # the CLI takes the token from the config
        daemon.env["NOSANA_CACHE_API__TOKEN"] = "wrong"
        wrong = daemon.cli("status")
        assert wrong.returncode == 1
        assert "Bearer" in wrong.stderr
    finally:
        daemon.env.pop("NOSANA_CACHE_API__TOKEN")
        assert daemon.stop() == 0


def test_unknown_routes_and_methods_are_problems(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path).start()
    try:
        with pytest.raises(ApiError) as missing:
            daemon.client().get("/v1/nothing-here")
        assert missing.value.status == 404
        assert missing.value.problem["title"] == "Not Found"
        with pytest.raises(ApiError) as method:
            daemon.client().request("DELETE", "/v1/status")
        assert method.value.status == 405
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"store": {"ttl": "3x"}}, "store.ttl"),
        ({"api": {"listen": ["0.0.0.0:9810"]}}, "api.token"),
        ({"docker": {"gpu": "maybe"}}, "docker.gpu"),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, config: dict[str, dict[str, object]], named: str
) -> None:
    daemon = DaemonProcess(tmp_path, config)
    daemon.start(wait=False)
    assert daemon.process is not None
    assert daemon.process.wait(timeout=30) == 2
    output = daemon.log().strip().splitlines()
    assert len(output) == 1
    assert named in output[0]
    assert "Traceback" not in daemon.log()


def test_a_port_in_use_fails_clearly(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        daemon = DaemonProcess(tmp_path, {"api": {"listen": [f"127.0.0.1:{port}"]}})
        daemon.start(wait=False)
        assert daemon.process is not None
        assert daemon.process.wait(timeout=30) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in daemon.log()
        assert "Traceback" not in daemon.log()
    finally:
        holder.close()


def test_client_commands_exit_3_when_no_daemon_answers(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path)
    daemon.config_path.write_text(
        f'[api]\nlisten = ["127.0.0.1:{daemon.port}"]\n[store]\npath = "{tmp_path}"\n'
    )
    result = daemon.cli("status")
    assert result.returncode == 3
    assert "no daemon answers" in result.stderr


def test_cli_usage_and_config_errors_exit_2(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path)
    daemon.config_path.write_text('[store]\nttl = "forever"\n')
    assert daemon.cli("no-such-command").returncode == 2
    bad = daemon.cli("status")
    assert bad.returncode == 2
    assert "store.ttl" in bad.stderr


def test_config_show_prints_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, {"api": {"token": "hide-me"}})
    daemon.config_path.write_text('[api]\ntoken = "hide-me"\n[store]\nttl = "6h"\n')
    daemon.env["NOSANA_CACHE_DOWNLOAD__CONCURRENCY"] = "7"
    shown = daemon.cli("config", "show")
    assert shown.returncode == 0
    assert "hide-me" not in shown.stdout
    assert 'token = "***"' in shown.stdout
    assert 'ttl = "6h"' in shown.stdout
    assert "concurrency = 7" in shown.stdout


def test_the_readme_run_command_works_with_no_config_at_all(tmp_path: Path) -> None:
    """`nosana-cache serve` on embedded defaults: store under ~/.cache, API on 127.0.0.1:9810."""
    daemon = DaemonProcess(tmp_path, use_config_file=False)
    daemon.url = "http://127.0.0.1:9810"
    daemon.env.pop("XDG_CACHE_HOME")
    daemon.start()
    try:
        status = daemon.client().get("/v1/status")
        assert status["store"]["path"] == str(tmp_path / ".cache" / "nosana-cache")
        assert (tmp_path / ".cache" / "nosana-cache").is_dir()
        # As root (these tests are), the default docker.fence = auto puts the fence up,
        # where this host's network namespace shows a Docker bridge to fence.
        fence = status["fence"]
        assert fence["mode"] == "auto", fence
        assert fence["state"] == "fenced" or "no bridge" in fence["detail"], fence
    finally:
        assert daemon.stop() == 0
        removed = daemon.cli("fence", "--remove")  # the host's firewall is test_fence.py's
        assert removed.returncode == 0, removed.stderr
    assert not fence_rules()


def test_python_dash_m_daemon_is_the_console_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("nosana-cache, version")
