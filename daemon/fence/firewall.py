"""Installs, checks and removes the fence's rules with the host's own `iptables`.

The host's `iptables` command is the one the Docker engine itself calls, so the rules land in
whichever backend the host has (nf_tables or legacy) beside Docker's. Every call waits for
the xtables lock (`-w`): Docker, firewalld or another tool may hold it for a moment. Errors
become `FenceError`, with what the command said.

IPv4 hooks into `DOCKER-USER`, made here if the engine has not made it yet (the engine keeps
an existing one, and its jump from `FORWARD`, at its own start). IPv6 hooks straight into
`FORWARD`: the engine manages no IPv6 rules unless told to, and the daemon's networks are
IPv4-only, so only link-local IPv6 to the host itself remains to close.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import FenceError
from .rules import (
    BRIDGE_PREFIX,
    FINGERPRINT_COMMENT,
    FORWARD_CHAIN,
    HOST_CHAIN,
    FamilyRules,
    stamped,
)

DOCKER_USER = "DOCKER-USER"
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
_CAP_NET_ADMIN = 12
_TIMEOUT = 30


def missing_privilege() -> str | None:
    """Why this process cannot change the firewall, or None when it can."""
    if shutil.which("iptables", path=_SBIN) is None:
        return "iptables is not installed"
    if _has_net_admin():
        return None
    return "this process lacks CAP_NET_ADMIN (it does not run as root)"


def foreign_namespace() -> str | None:
    """Why rules made here would not fence the engine's containers, or None.

    A sidecar without `--network host` has a network namespace of its own: rules there would
    guard nothing. The engine's bridges are seen only from the host's namespace.
    """
    names = _interfaces()
    if any(n == "docker0" or n.startswith(("br-", BRIDGE_PREFIX)) for n in names):
        return None
    return "no bridge of the Docker engine is seen here (run in the host's network namespace)"


def install(rules: FamilyRules, fingerprint: str) -> None:
    """Fill both chains in one transaction, then hook them in; idempotent."""
    if rules.family == "ipv4":
        _ensure_docker_user(rules.command)
    _run(rules.command + "-restore", "-w", "--noflush", stdin=stamped(rules, fingerprint))
    _hook(rules.command, _forward_hook(rules), rules.forward_jump)
    _hook(rules.command, "INPUT", rules.host_jump)


def installed(rules: FamilyRules, fingerprint: str) -> bool:
    """The chains hold this fingerprint's rules and both jumps are in place."""
    try:
        listing = _run(rules.command, "-w", "-S", FORWARD_CHAIN)
    except FenceError:
        return False
    if f"{FINGERPRINT_COMMENT} {fingerprint}" not in listing:
        return False
    return _has(rules.command, _forward_hook(rules), rules.forward_jump) and _has(
        rules.command, "INPUT", rules.host_jump
    )


def remove(rules: FamilyRules) -> None:
    """Take every jump out, then the chains: nothing of the fence is left."""
    for hook in (DOCKER_USER, "FORWARD"):
        while _has(rules.command, hook, rules.forward_jump):
            _run(rules.command, "-w", "-D", hook, *rules.forward_jump)
    while _has(rules.command, "INPUT", rules.host_jump):
        _run(rules.command, "-w", "-D", "INPUT", *rules.host_jump)
    for chain in (FORWARD_CHAIN, HOST_CHAIN):
        if _exists(rules.command, chain):
            _run(rules.command, "-w", "-F", chain)
            _run(rules.command, "-w", "-X", chain)


def available(command: str) -> bool:
    """The command exists and works here (`ip6tables` fails on a host without IPv6)."""
    if shutil.which(command, path=_SBIN) is None:
        return False
    try:
        _run(command, "-w", "-S", "INPUT")
    except FenceError:
        return False
    return True


def _forward_hook(rules: FamilyRules) -> str:
    return DOCKER_USER if rules.family == "ipv4" else "FORWARD"


def _ensure_docker_user(command: str) -> None:
    if not _exists(command, DOCKER_USER):
        _run(command, "-w", "-N", DOCKER_USER)
    if not _has(command, "FORWARD", ["-j", DOCKER_USER]):
        _run(command, "-w", "-I", "FORWARD", "1", "-j", DOCKER_USER)


def _hook(command: str, chain: str, jump: list[str]) -> None:
    if not _has(command, chain, jump):
        _run(command, "-w", "-I", chain, "1", *jump)


def _has(command: str, chain: str, rule: list[str]) -> bool:
    return _ok(command, "-w", "-C", chain, *rule)


def _exists(command: str, chain: str) -> bool:
    return _ok(command, "-w", "-S", chain)


def _ok(command: str, *args: str) -> bool:
    try:
        _run(command, *args)
    except FenceError:
        return False
    return True


def _run(command: str, *args: str, stdin: str | None = None) -> str:
    binary = shutil.which(command, path=_SBIN)
    if binary is None:
        raise FenceError(f"{command} is not installed")
    try:
        done = subprocess.run(
            [binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FenceError(f"{command} {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise FenceError(f"{command} {' '.join(args)}: {said[0] if said else done.returncode}")
    return done.stdout


def _has_net_admin() -> bool:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    return False


def _interfaces() -> list[str]:
    try:
        return [entry.name for entry in Path("/sys/class/net").iterdir()]
    except OSError:
        return []
