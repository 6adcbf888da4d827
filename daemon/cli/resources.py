"""`nosana-cache resources ...`, `gc`, `verify`: the store, as the running daemon sees it."""

from __future__ import annotations

import time
from typing import Any

import click

from . import render
from .common import Options, client_command


@click.group()
def resources() -> None:
    """Cached resources and images (entries of the store).

    \b
    Examples:
      nosana-cache resources ls
      nosana-cache resources ls --state ready --json
      nosana-cache resources show 3f2a9c1e0b7d --files
      nosana-cache resources rm 3f2a9c1e0b7d
    """


@client_command(resources, "ls")
@click.option(
    "--state", multiple=True, type=click.Choice(["pending", "downloading", "ready", "failed"])
)
def resources_ls(options: Options, state: tuple[str, ...]) -> Any:
    """List every entry: id, source, state, size, expiry, hits."""
    body = options.client().get("/v1/resources", state=",".join(state) or None)
    return body, render.resources(body, time.time())


@client_command(resources, "show")
@click.argument("entry_id")
@click.option("--files", is_flag=True, help="List the entry's files too.")
def resources_show(options: Options, entry_id: str, files: bool) -> Any:
    """One entry in full."""
    client = options.client()
    body = client.get(f"/v1/resources/{_full_id(client, entry_id)}", files=files or None)
    return body, render.resource(body, time.time())


@client_command(resources, "rm")
@click.argument("entry_id")
def resources_rm(options: Options, entry_id: str) -> Any:
    """Delete an entry now (refused while pinned or in use)."""
    client = options.client()
    full = _full_id(client, entry_id)
    client.request("DELETE", f"/v1/resources/{full}")
    return {"deleted": full}, f"deleted {full}"


def _full_id(client: Any, prefix: str) -> str:
    """Entries are shown with 12-character ids; accept any unique prefix."""
    if len(prefix) >= 32:
        return prefix
    matches = [
        e["id"] for e in client.get("/v1/resources")["resources"] if e["id"].startswith(prefix)
    ]
    if len(matches) > 1:
        raise click.UsageError(f"{prefix!r} matches {len(matches)} entries; give more of the id")
    return str(matches[0]) if matches else prefix  # none: the daemon answers 404
