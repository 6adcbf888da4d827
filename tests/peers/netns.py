"""Hosts of a network the test makes: each a network namespace behind a veth pair to this host.

A `NetnsHost` stands for a machine the host routes to: a "public" one (203.0.113.0/24, a
documentation range no real network uses) or one on the operator's LAN (10.213.7.0/24). Its
namespace holds the far end of a veth pair, with the given addresses and a default route back
through the host's end; an HTTP server in it answers on each address with the host's name, so
a probe says which host it reached. Nothing leaves the machine: the routes point at the veth.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .procs import PEER_PIDS, start, stop, wait_until

_SERVER = """
import http.server, sys
class Who(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = sys.argv[1].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[2])), Who).serve_forever()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class NetnsHost:
    def __init__(self, name: str, subnet: str, addresses: list[str], port: int = 8000) -> None:
        self.name = name
        self.namespace = f"ncft-{name}"
        self.link = f"ncft-{name}"[:15]
        network = ipaddress.ip_network(subnet)
        self.gateway = str(next(network.hosts()))
        """This host's own address on that network."""
        self.prefix = network.prefixlen
        self.addresses = addresses
        self.port = port
        self._server: subprocess.Popen[bytes] | None = None
        self._root = Path(tempfile.mkdtemp(prefix=f"{self.namespace}-"))

    def url(self, address: str | None = None) -> str:
        return f"http://{address or self.addresses[0]}:{self.port}/"

    def start(self) -> NetnsHost:
        self.stop()  # what a killed test session left
        _ip("netns", "add", self.namespace)
        _ip(
            "link",
            "add",
            self.link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.namespace,
        )
        _ip("addr", "add", f"{self.gateway}/{self.prefix}", "dev", self.link)
        _ip("link", "set", self.link, "up")
        inside = ["-n", self.namespace]
        for address in self.addresses:
            _ip(*inside, "addr", "add", f"{address}/{self.prefix}", "dev", "eth0")
        _ip(*inside, "link", "set", "eth0", "up")
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "route", "add", "default", "via", self.gateway)
        command = ["ip", "netns", "exec", self.namespace, sys.executable, "-c", _SERVER]
        log = self._root / "server.log"
        self._server = start([*command, self.name, str(self.port)], log)
        wait_until(self._answers, 20, f"the {self.name} host's server", log)
        return self

    def _answers(self) -> bool:
        probe = ["ip", "netns", "exec", self.namespace, sys.executable, "-c"]
        code = f"import urllib.request as u; u.urlopen({self.url('127.0.0.1')!r}, timeout=1)"
        return subprocess.run([*probe, code], capture_output=True, timeout=10).returncode == 0

    def stop(self) -> None:
        if self._server is not None:
            stop(self._server, timeout=10)
            PEER_PIDS.discard(self._server.pid)
            self._server = None
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.link)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", self.namespace)


def pytest_in_namespace(
    cases: Path, setup: str, env: dict[str, str], timeout: float, *, show: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the pytest module `cases` in a fresh network and mount namespace (as root: only
    `lo`, brought up, then the shell `setup`, e.g. addresses or bind mounts that go with the
    namespace); what it printed. Nothing it does outlives it."""
    root = Path(__file__).resolve().parents[2]
    inner = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    inner += ["-s"] if show else []
    script = f'set -e; ip link set lo up; {setup} exec "$@"'
    return subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", script, "netns", *inner, str(cases)],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout,
    )
