"""The fence's rule set, read as iptables would run it: first match wins."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from daemon.engine.networks import bridge_name
from daemon.fence import BRIDGE_PREFIX, FencePlan
from daemon.fence.plan import host_resolvers
from daemon.fence.rules import FORWARD_CHAIN, HOST_CHAIN, rules_for, stamped


def chain(plan: FencePlan, family: str, name: str) -> list[str]:
    rules = rules_for(plan, family)  # type: ignore[arg-type]
    prefix = f"-A {name} "
    return [line.removeprefix(prefix) for line in rules.restore if line.startswith(prefix)]


def verdict(rules: list[str], destination: str, port: int = 80, protocol: str = "tcp") -> str:
    """What the first matching rule does with a new connection from a job container."""
    address = ipaddress.ip_address(destination)
    for rule in rules:
        words = rule.split()
        if "--ctstate" in words or "-o" in words or "comment" in words:
            continue
        if "-d" in words and address not in ipaddress.ip_network(words[words.index("-d") + 1]):
            continue
        if "-p" in words and words[words.index("-p") + 1] != protocol:
            continue
        if "--dport" in words and int(words[words.index("--dport") + 1]) != port:
            continue
        return words[words.index("-j") + 1]
    return "RETURN"


PLAN = FencePlan(
    allow=(ipaddress.ip_network("10.8.0.0/16"), ipaddress.ip_network("fd12::/16")),
    listener_port=9811,
    resolvers=("192.168.1.1", "fd00::53"),
)


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("8.8.8.8", "RETURN"),
        ("203.0.113.10", "RETURN"),
        ("10.1.2.3", "REJECT"),
        ("10.8.4.4", "RETURN"),  # fence_allow
        ("172.17.0.1", "REJECT"),
        ("192.168.1.20", "REJECT"),
        ("100.100.100.100", "REJECT"),  # CGNAT
        ("169.254.169.254", "REJECT"),  # cloud metadata
        ("127.0.0.1", "REJECT"),
        ("0.0.0.0", "REJECT"),
    ],
)
def test_what_a_job_may_reach_beyond_the_host_ipv4(destination: str, expected: str) -> None:
    assert verdict(chain(PLAN, "ipv4", FORWARD_CHAIN), destination) == expected


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("2001:db8::1", "RETURN"),
        ("2606:4700::1111", "RETURN"),
        ("fd00::1", "REJECT"),  # ULA
        ("fd12::7", "RETURN"),  # fence_allow
        ("fe80::1", "REJECT"),
        ("::1", "REJECT"),
        ("::ffff:10.0.0.1", "REJECT"),  # IPv4-mapped
    ],
)
def test_what_a_job_may_reach_beyond_the_host_ipv6(destination: str, expected: str) -> None:
    assert verdict(chain(PLAN, "ipv6", FORWARD_CHAIN), destination) == expected


def test_dns_reaches_the_resolvers_only_and_only_on_port_53() -> None:
    forward = chain(PLAN, "ipv4", FORWARD_CHAIN)
    assert verdict(forward, "192.168.1.1", 53, "udp") == "RETURN"
    assert verdict(forward, "192.168.1.1", 53, "tcp") == "RETURN"
    assert verdict(forward, "192.168.1.1", 80) == "REJECT"
    assert verdict(forward, "192.168.1.2", 53, "udp") == "REJECT"
    assert verdict(chain(PLAN, "ipv6", FORWARD_CHAIN), "fd00::53", 53, "udp") == "RETURN"


def test_the_host_itself_is_closed_but_for_the_listener_the_resolvers_and_what_is_allowed() -> None:
    host = chain(PLAN, "ipv4", HOST_CHAIN)
    assert verdict(host, "203.0.113.1", 22) == "REJECT"  # even on a public address
    assert verdict(host, "172.17.0.1", 9810) == "REJECT"  # the daemon's own API
    assert verdict(host, "172.17.0.1", 9811) == "RETURN"  # its container listener
    assert verdict(host, "10.8.0.1", 22) == "RETURN"
    assert verdict(host, "192.168.1.1", 53, "udp") == "RETURN"
    assert verdict(chain(PLAN, "ipv6", HOST_CHAIN), "fe80::1", 9811) == "REJECT"


def test_no_listener_port_opens_nothing_of_the_host() -> None:
    host = chain(FencePlan(), "ipv4", HOST_CHAIN)
    assert verdict(host, "172.17.0.1", 9811) == "REJECT"


def test_replies_and_the_jobs_own_networks_are_left_to_docker_and_nothing_is_accepted() -> None:
    rules = rules_for(PLAN, "ipv4")
    forward = chain(PLAN, "ipv4", FORWARD_CHAIN)
    assert forward[0] == "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    assert forward[1] == f"-o {BRIDGE_PREFIX}+ -j RETURN"
    assert not [line for line in rules.restore if "ACCEPT" in line or "DROP" in line]
    assert rules.forward_jump == ["-i", f"{BRIDGE_PREFIX}+", "-j", FORWARD_CHAIN]


def test_the_fingerprint_names_the_rule_set() -> None:
    fingerprint = PLAN.fingerprint()
    assert fingerprint == FencePlan(PLAN.allow, 9811, None, PLAN.resolvers).fingerprint()
    assert fingerprint != FencePlan(PLAN.allow, 9812, None, PLAN.resolvers).fingerprint()
    assert fingerprint != FencePlan((), 9811, None, PLAN.resolvers).fingerprint()
    text = stamped(rules_for(PLAN, "ipv4"), fingerprint)
    assert f'--comment "nosana-cache fence {fingerprint}" -j RETURN' in text


def test_bridge_names_fit_linux_carry_the_prefix_and_differ_between_engines() -> None:
    names = {bridge_name(f"nosana-cache-job-{n:064d}", "engine-a") for n in range(100)}
    names |= {bridge_name("nosana-cache-jobs", engine) for engine in ("engine-a", "engine-b")}
    assert len(names) == 102
    assert all(len(n) <= 15 and n.startswith(BRIDGE_PREFIX) for n in names)


def test_resolvers_skip_loopback_stubs_for_their_upstreams(tmp_path: Path) -> None:
    stub, upstreams = tmp_path / "resolv.conf", tmp_path / "upstreams.conf"
    stub.write_text("nameserver 127.0.0.53\noptions edns0\n")
    upstreams.write_text("# systemd\nnameserver 192.168.1.1\nnameserver fe80::1%eth0\nsearch x\n")
    assert host_resolvers(stub, upstreams) == ("192.168.1.1", "fe80::1")
    stub.write_text("nameserver 10.0.0.2\nnameserver 127.0.0.1\nnameserver bogus\n")
    assert host_resolvers(stub, upstreams) == ("10.0.0.2",)
    assert host_resolvers(tmp_path / "missing", tmp_path / "missing") == ()
