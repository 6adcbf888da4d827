"""`nosana-cache fence`: the privileged step that installs or removes the fence.

It runs without the daemon, from the same settings, as root in the host's network namespace:
the systemd unit's `ExecStartPre=+`, or a one-shot container with `NET_ADMIN` and the host's
network beside the sidecar. It leaves a stamp in the store, which a daemon unable to read the
firewall trusts (`daemon.fence`).
"""

from __future__ import annotations

import click

from ..errors import FenceError
from ..fence import install, plan_of, remove, remove_stamp, write_stamp
from ..fence.fence import STAMP_NAME
from ..fence.firewall import foreign_namespace, missing_privilege
from ..fence.rules import rules_for
from ..util.clock import SystemClock
from .common import Options, global_options, pass_options


@global_options
@click.command()
@click.option("--install", "action", flag_value="install", help="Install (or update) the fence.")
@click.option("--remove", "action", flag_value="remove", help="Remove every rule of the fence.")
@pass_options
def fence(options: Options, action: str | None) -> None:
    """Fence job containers off private networks (docker.fence), or take the fence away.

    Needs root (or CAP_NET_ADMIN) in the host's network namespace. Without --install or
    --remove, prints the rules the settings ask for.

    \b
    Examples:
      nosana-cache fence --install     what the systemd unit's ExecStartPre=+ runs
      nosana-cache fence --remove      before uninstalling: no rule is left behind
    """
    settings = options.settings()
    plan = plan_of(settings.docker, settings.huggingface)
    stamp = settings.store.path / STAMP_NAME
    if action is None:
        for family in ("ipv4", "ipv6"):
            rules = rules_for(plan, family)
            click.echo(f"# {rules.command}-restore --noflush")
            click.echo("\n".join(rules.restore))
        return
    _privileged()
    if action == "remove" or settings.docker.fence == "off":
        remove(plan)
        remove_stamp(stamp)
        why = "" if action == "remove" else " (docker.fence = off)"
        click.echo(f"fence removed{why}: no rule of it is left")
        return
    how = install(plan, plan.fingerprint())
    write_stamp(stamp, plan.fingerprint(), SystemClock().now())
    click.echo(f"fence up: {how}")


def _privileged() -> None:
    why = missing_privilege() or foreign_namespace()
    if why is not None:
        raise FenceError(f"cannot change the firewall: {why}")
