"""Where job containers reach this host: an address the host holds on one of the engine's bridges.

Every container's default route goes through its network's gateway, an address the host holds
on that network's Linux bridge; the host accepts a packet to any of its own addresses on
whichever interface it arrives, so a container reaches every bridge's address of the host, not
only its own network's. A listener for containers binds one such address, and every container
maps one name to it, whichever network it runs on (a job's own, or the shared one).

The candidates, best first:

1. the default bridge's address, read from the host (`docker0`, or the bridge the engine was
   told to use): it is there as long as the engine is, whatever job networks come and go;
2. the default bridge's `Gateway` in the engine's IPAM config: the same address, but a Docker
   engine (20.10) that made `docker0` itself on its first start leaves it out until it is
   restarted once (issue 24), so it is only the fallback for a bridge the host cannot read;
3. the address of the shared job network (`nosana-cache-jobs`, made if missing), for an
   engine without a default bridge (`"bridge": "none"`): the daemon makes that network itself,
   and the engine always records its gateway. A `docker network prune` while no job runs can
   take it away, which is why it comes last.

Where the daemon cannot see the engine's bridges (it runs in a container without the host's
network) none of them binds, and `huggingface.mirror_address` must say where.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import docker.errors

from .client import Engine
from .networks import BRIDGE_NAME, SHARED_NETWORK, Networks

DEFAULT_BRIDGE = "bridge"
"""The engine's name of its default bridge network."""
DEFAULT_BRIDGE_INTERFACE = "docker0"
_SIOCGIFADDR = 0x8915
"""Linux's ioctl for an interface's (first) IPv4 address."""


@dataclass(frozen=True)
class HostAddress:
    """An address of this host that containers reach, and where it was found (for status)."""

    address: str
    source: str


def interface_ipv4(name: str) -> str | None:
    """The IPv4 address this host holds on the interface `name`, or None (no such interface,
    or none on it). Read in this process's network namespace."""
    request = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
        except OSError:
            return None
    return socket.inet_ntoa(answer[20:24])


def ipam_gateway(network: dict[str, Any]) -> str | None:
    """The IPv4 gateway of an inspected network's IPAM config, when the engine recorded one."""
    for config in (network.get("IPAM") or {}).get("Config") or []:
        gateway = str(config.get("Gateway") or "").split("/")[0]
        if gateway and ":" not in gateway:
            return gateway
    return None


def network_addresses(network: dict[str, Any], label: str) -> list[HostAddress]:
    """The host's address on an inspected bridge network: read from its Linux bridge, then as
    the engine recorded it. `label` names the network in the sources."""
    found: list[HostAddress] = []
    default = DEFAULT_BRIDGE_INTERFACE if network.get("Name") == DEFAULT_BRIDGE else None
    interface = (network.get("Options") or {}).get(BRIDGE_NAME) or default
    if interface and (address := interface_ipv4(interface)):
        found.append(HostAddress(address, f"the host's address on {interface} ({label})"))
    gateway = ipam_gateway(network)
    if gateway and gateway not in {a.address for a in found}:
        found.append(HostAddress(gateway, f"the Gateway the engine records for {label}"))
    return found


async def host_addresses(engine: Engine, networks: Networks) -> AsyncIterator[HostAddress]:
    """The candidates, best first; the shared job network is only looked up (and made) when
    the caller asks past the default bridge's."""
    seen: set[str] = set()
    default = await _inspect(engine, DEFAULT_BRIDGE)
    for found in network_addresses(default, "the default bridge network") if default else []:
        seen.add(found.address)
        yield found
    shared = await _inspect(engine, await networks.shared())
    for found in network_addresses(shared, f"the job network {SHARED_NETWORK}") if shared else []:
        if found.address not in seen:
            yield found


async def _inspect(engine: Engine, name: str) -> dict[str, Any] | None:
    client = await engine.client()
    try:
        network: dict[str, Any] = await engine.call(client.api.inspect_network, name)
    except docker.errors.APIError:  # no such network (an engine run with "bridge": "none")
        return None
    return network
