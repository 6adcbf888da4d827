"""Whether job containers are fenced, as `docker.fence` asks: installed, trusted, or why not.

The fence is installed by whoever may change the host's firewall: the daemon itself when it
runs as root (or with CAP_NET_ADMIN) in the host's network namespace, else a privileged step
the operator can see, `nosana-cache fence --install` (the systemd unit's `ExecStartPre=+`, a
one-shot container with `NET_ADMIN` beside the sidecar). That step leaves a stamp in the store
(`fence.json`: the rule set's fingerprint and the boot it was made in), which an unprivileged
daemon, unable to read the firewall, trusts; a stamp from another boot (the rules died with
it) or for other settings is not trusted.

The state is settled at start, again every `RECHECK` seconds by the scheduler (a firewall
reload may have flushed the rules: a privileged daemon puts them back), and at once when a job
is submitted under `required` while unfenced (the operator may just have installed it). The
rules stay when the daemon stops: a service job's container outlives it, and must stay
fenced. `nosana-cache fence --remove` takes them away.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import FenceError
from ..logs import get_logger
from ..settings import DockerSettings, HuggingFaceSettings
from ..util.clock import Clock, SystemClock
from . import firewall
from .plan import plan_of
from .rules import FamilyRules, FencePlan, rules_for

log = get_logger(__name__)

STAMP_NAME = "fence.json"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
RECHECK = 60.0
INSTALL_HINT = (
    "install it as root with `nosana-cache fence --install` (the systemd unit's "
    "ExecStartPre=+ does), or set docker.fence = off"
)


@dataclass(frozen=True)
class FenceStatus:
    mode: Literal["auto", "required", "off"]
    state: Literal["fenced", "unfenced", "off"]
    detail: str
    """How it is known to be up, or why it is not."""
    checked_at: float


class Fence:
    def __init__(
        self,
        docker: DockerSettings,
        hub: HuggingFaceSettings,
        store_path: Path,
        clock: Clock | None = None,
    ) -> None:
        """`store_path`: where the stamp of `nosana-cache fence --install` is left, which both
        the privileged step and the daemon find from the same settings."""
        self.clock = clock or SystemClock()
        self.mode = docker.fence
        self.plan: FencePlan = plan_of(docker, hub)
        self.fingerprint = self.plan.fingerprint()
        self.stamp = store_path / STAMP_NAME
        self._status: FenceStatus | None = None
        self._lock = asyncio.Lock()

    async def status(self) -> FenceStatus:
        """The last settled state (the scheduler settles it every `RECHECK` seconds: a status
        or metrics request runs no firewall command)."""
        return self._status if self._status is not None else await self.settle()

    async def settle(self) -> FenceStatus:
        """Check the fence, install it if this process may, and log a change of state."""
        async with self._lock:
            found = await asyncio.to_thread(self._settle)
            before = self._status.state if self._status else None
            self._status = found
        if found.state != before:
            if found.state == "unfenced":
                log.warning("fence.unfenced", mode=self.mode, reason=found.detail)
            else:
                log.info(f"fence.{found.state}", detail=found.detail)
        return found

    async def require(self) -> None:
        """Refuse a job under `required` while job containers cannot be fenced."""
        if self.mode != "required":
            return
        found = await self.status()
        if found.state != "fenced":
            found = await self.settle()
        if found.state != "fenced":
            raise FenceError(
                f"docker.fence = required and job containers are unfenced: {found.detail}"
            )

    def _settle(self) -> FenceStatus:
        if self.mode == "off":
            return self._result("off", "job containers reach what the host reaches")
        missing = firewall.missing_privilege() or firewall.foreign_namespace()
        if missing is None:
            try:
                how = install(self.plan, self.fingerprint)
            except FenceError as exc:
                return self._result("unfenced", str(exc))
            write_stamp(self.stamp, self.fingerprint, self.clock.now())
            return self._result("fenced", f"{how} by the daemon")
        stamp = read_stamp(self.stamp)
        if stamp.get("fingerprint") == self.fingerprint and stamp.get("boot_id") == boot_id():
            installed_at = stamp.get("installed_at")
            seconds = installed_at if isinstance(installed_at, int | float) else 0
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
            return self._result(
                "fenced",
                f"installed by `nosana-cache fence --install` at {when} (this daemon cannot "
                f"read the firewall: {missing})",
            )
        if stamp:
            missing += "; the fence installed is for another boot or other settings"
        return self._result("unfenced", f"{missing}: {INSTALL_HINT}")

    def _result(self, state: Literal["fenced", "unfenced", "off"], detail: str) -> FenceStatus:
        if state == "fenced" and self.plan.listener_port is None:
            detail += "; job containers cannot reach the Hub endpoint (no fixed mirror_port)"
        return FenceStatus(self.mode, state, detail, self.clock.now())


def families(plan: FencePlan) -> list[FamilyRules]:
    """IPv4 always; IPv6 where the host has it (`ip6tables` works)."""
    found = [rules_for(plan, "ipv4")]
    if firewall.available("ip6tables"):
        found.append(rules_for(plan, "ipv6"))
    return found


def install(plan: FencePlan, fingerprint: str) -> str:
    """Install the fence unless it is already there; how it was found."""
    made = []
    for rules in families(plan):
        if not firewall.installed(rules, fingerprint):
            firewall.install(rules, fingerprint)
            made.append(rules.family)
    if made:
        return f"installed ({', '.join(made)})"
    return "checked in the firewall"


def remove(plan: FencePlan) -> None:
    for rules in (rules_for(plan, "ipv4"), rules_for(plan, "ipv6")):
        if firewall.available(rules.command):
            firewall.remove(rules)


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def read_stamp(path: Path) -> dict[str, object]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write_stamp(path: Path, fingerprint: str, now: float) -> None:
    """Best effort: a store not yet made, or read-only, only costs the unprivileged check."""
    stamp = {"fingerprint": fingerprint, "boot_id": boot_id(), "installed_at": now}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(stamp))
        temporary.chmod(0o644)
        temporary.replace(path)
    except OSError as exc:
        log.warning("fence.stamp_failed", path=str(path), error=str(exc))


def remove_stamp(path: Path) -> None:
    path.unlink(missing_ok=True)
