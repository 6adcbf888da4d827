"""The fence this host needs: the settings, and the DNS servers job containers' queries go to.

The engine gives a container on one of its own networks an embedded DNS server, which asks the
host's upstream resolvers from inside the container's namespace: those queries cross the fence.
Home and office networks, and clouds, put resolvers on private addresses (a router at
192.168.1.1, a VPC resolver at 10.0.0.2), so the fence lets port 53 through to the resolvers of
this host's `resolv.conf`, and to nothing else private. Where `resolv.conf` names only a
loopback stub (systemd-resolved's 127.0.0.53), the engine uses the upstream list that
systemd-resolved keeps, and so does the fence.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from ..settings import DockerSettings, HuggingFaceSettings
from .rules import FencePlan

RESOLV_CONF = Path("/etc/resolv.conf")
RESOLVED_UPSTREAMS = Path("/run/systemd/resolve/resolv.conf")


def plan_of(docker: DockerSettings, hub: HuggingFaceSettings) -> FencePlan:
    """`docker.fence_allow`, and the Hub endpoint's listener when its port is fixed."""
    listening = hub.mirror and hub.mirror_port != 0
    return FencePlan(
        allow=tuple(docker.fence_allow),
        listener_port=hub.mirror_port if listening else None,
        listener_address=hub.mirror_address if listening else None,
        resolvers=host_resolvers(),
    )


def host_resolvers(
    resolv_conf: Path = RESOLV_CONF, upstreams: Path = RESOLVED_UPSTREAMS
) -> tuple[str, ...]:
    """The nameservers containers' queries reach: loopback stubs replaced by their upstreams."""
    found = _nameservers(resolv_conf)
    if not found or all(ipaddress.ip_address(a).is_loopback for a in found):
        found = _nameservers(upstreams)
    return tuple(sorted({a for a in found if not ipaddress.ip_address(a).is_loopback}))


def _nameservers(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            address = parts[1].split("%", 1)[0]
            try:
                found.append(str(ipaddress.ip_address(address)))
            except ValueError:
                continue
    return found
