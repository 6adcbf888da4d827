"""The fence's rules, computed from the settings alone: what job containers may not reach.

Job containers run only on the daemon's own bridge networks, whose Linux bridges are all named
`ncj-...` (`engine.networks`), so one interface wildcard (`ncj-+`) matches every packet a job
container sends, and nothing else on the host. Two chains of the daemon's own hold the rules:

- `NOSANA-CACHE-FENCE`, jumped to from Docker's `DOCKER-USER` chain (the place Docker
  documents for an operator's rules: it runs before Docker's own forwarding rules), sees what
  a container sends through the host to elsewhere. It rejects private, loopback, link-local,
  CGNAT and ULA destinations, except the host's DNS resolvers (port 53: the engine's embedded
  DNS forwards a container's queries from the container's own namespace) and the operator's
  `docker.fence_allow`. Replies, and traffic to another bridge of the daemon's, are left to
  Docker's own rules (which keep one network's containers from another's).
- `NOSANA-CACHE-FENCE-HOST`, jumped to from `INPUT`, sees what a container sends to the host
  itself, on any of its addresses: all of it is rejected but replies, the daemon's container
  listener (the Hub endpoint), the resolvers and `docker.fence_allow`.

Rejected, not dropped: a job that tries fails at once with "host unreachable" instead of
hanging until its own timeout. Nothing is ever accepted here: a rule returns to the chain it
came from, so Docker's own rules still apply to what the fence lets through.

The last rule of the forward chain carries a fingerprint of the whole rule set in a comment:
finding it tells that the installed fence is the one these settings ask for.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Literal

BRIDGE_PREFIX = "ncj-"
"""Every Linux bridge of a network the daemon makes for job containers starts with this."""
FORWARD_CHAIN = "NOSANA-CACHE-FENCE"
HOST_CHAIN = "NOSANA-CACHE-FENCE-HOST"
FINGERPRINT_COMMENT = "nosana-cache fence"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Family = Literal["ipv4", "ipv6"]

PRIVATE_V4 = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",
    "100.64.0.0/10",  # CGNAT
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
    "172.16.0.0/12",
    "192.168.0.0/16",
)
PRIVATE_V6 = (
    "::/128",
    "::1/128",
    "::ffff:0:0/96",  # IPv4-mapped: a private IPv4 address written as IPv6
    "fc00::/7",  # ULA
    "fe80::/10",  # link-local
)


@dataclass(frozen=True)
class FencePlan:
    """What the fence lets through besides the public internet."""

    allow: tuple[Network, ...] = ()
    """`docker.fence_allow`: destinations the operator opens to job containers."""
    listener_port: int | None = None
    """The port of the daemon's container listener (the Hub endpoint) on the host; None: no
    listener to reach (its port is chosen at bind time, or the endpoint is off)."""
    listener_address: str | None = None
    """The host address it listens on (`huggingface.mirror_address`); None: the port is open
    on every address of the host, the listener choosing one of its bridges' (`hub.listener`)."""
    resolvers: tuple[str, ...] = ()
    """The DNS servers job containers' queries go to."""

    def fingerprint(self) -> str:
        """Names this rule set: equal plans install equal rules."""
        text = "\n".join(rules_for(self, "ipv4").restore + rules_for(self, "ipv6").restore)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FamilyRules:
    """The fence for one address family: the chains' contents and the jumps into them."""

    family: Family
    command: str
    """`iptables` or `ip6tables`."""
    restore: list[str]
    """`iptables-restore --noflush` input that (re)fills both chains in one transaction."""
    forward_jump: list[str]
    """The rule, in the forward hook (`DOCKER-USER`), that sends job traffic to the fence."""
    host_jump: list[str]
    """The rule, in `INPUT`, that sends job traffic to the host to the fence."""


def rules_for(plan: FencePlan, family: Family) -> FamilyRules:
    v6 = family == "ipv6"
    reject = [
        "-j",
        "REJECT",
        "--reject-with",
        "icmp6-adm-prohibited" if v6 else "icmp-admin-prohibited",
    ]
    private = PRIVATE_V6 if v6 else PRIVATE_V4
    allowed = [str(net) for net in plan.allow if (net.version == 6) == v6]
    resolvers = [r for r in plan.resolvers if (ipaddress.ip_address(r).version == 6) == v6]
    replies = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"]

    forward = [replies, ["-o", f"{BRIDGE_PREFIX}+", "-j", "RETURN"]]
    forward += _dns(resolvers) + [["-d", net, "-j", "RETURN"] for net in allowed]
    forward += [["-d", net, *reject] for net in private]
    host = [replies]
    if plan.listener_port is not None and not v6:
        to = ["-d", plan.listener_address] if plan.listener_address else []
        host.append([*to, "-p", "tcp", "--dport", str(plan.listener_port), "-j", "RETURN"])
    host += _dns(resolvers) + [["-d", net, "-j", "RETURN"] for net in allowed]
    host.append(reject)

    lines = ["*filter", f":{FORWARD_CHAIN} - [0:0]", f":{HOST_CHAIN} - [0:0]"]
    lines += [" ".join(["-A", FORWARD_CHAIN, *rule]) for rule in forward]
    lines += [" ".join(["-A", HOST_CHAIN, *rule]) for rule in host]
    lines.append(f'-A {FORWARD_CHAIN} -m comment --comment "{FINGERPRINT_COMMENT}" -j RETURN')
    lines.append("COMMIT")
    incoming = ["-i", f"{BRIDGE_PREFIX}+"]
    return FamilyRules(
        family=family,
        command="ip6tables" if v6 else "iptables",
        restore=lines,
        forward_jump=[*incoming, "-j", FORWARD_CHAIN],
        host_jump=[*incoming, "-j", HOST_CHAIN],
    )


def stamped(rules: FamilyRules, fingerprint: str) -> str:
    """The restore input with the fingerprint in the last rule's comment."""
    marker = f'"{FINGERPRINT_COMMENT}"'
    return (
        "\n".join(
            line.replace(marker, f'"{FINGERPRINT_COMMENT} {fingerprint}"') for line in rules.restore
        )
        + "\n"
    )


def _dns(resolvers: list[str]) -> list[list[str]]:
    return [
        ["-d", address, "-p", protocol, "--dport", "53", "-j", "RETURN"]
        for address in resolvers
        for protocol in ("udp", "tcp")
    ]
