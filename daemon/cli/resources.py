"""`nosana-cache resources ...`, `gc`, `verify`: the store, as the running daemon sees it.

Entries are the daemon's JSON, read as `dict[str, Any]` (render.py says why)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..util.clock import SystemClock
from . import render
from .common import Options, client_command, global_options, is_terminal


@global_options
@click.group()
def resources() -> None:
    """Cached resources and images (entries of the store).

    \b
    Examples:
      nosana-cache resources pull model.json
      echo '{"type": "HF", "repo": "TinyLlama/TinyLlama-1.1B-Chat-v1.0"}' \\
        | nosana-cache resources pull -
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
    return body, render.resources(body, SystemClock().now())


@client_command(resources, "show")
@click.argument("entry_id")
@click.option("--files", is_flag=True, help="List the entry's files too.")
def resources_show(options: Options, entry_id: str, files: bool) -> Any:
    """One entry in full."""
    client = options.client()
    body = client.get(f"/v1/resources/{_full_id(client, entry_id)}", files=files or None)
    return body, render.resource(body, SystemClock().now())


@client_command(resources, "rm")
@click.argument("entry_id")
def resources_rm(options: Options, entry_id: str) -> Any:
    """Delete an entry now (refused while pinned or in use)."""
    client = options.client()
    full = _full_id(client, entry_id)
    client.request("DELETE", f"/v1/resources/{full}")
    return {"deleted": full}, f"deleted {full}"


@client_command(resources, "pull")
@click.argument("spec", type=click.File("r"))
def resources_pull(options: Options, spec: Any) -> Any:
    """Fetch a resource into the cache (SPEC: a JSON file of one resource, or - for stdin).

    On a terminal a progress bar follows the download; the command ends when the entry is
    ready (exit 0) or has failed (exit 1, with the reason).
    """
    try:
        resource = json.load(spec)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="SPEC") from exc
    client = options.client()
    if not is_terminal():
        body = client.request(
            "POST", "/v1/resources", body=resource, params={"wait": True}, timeout=7 * 24 * 3600
        )
        return body, render.pulled(body)
    body = client.request("POST", "/v1/resources", body=resource)
    body = follow_progress(client, body)
    if body["state"] == "failed":
        return body, f"failed: {body['error']}", 1
    return body, render.pulled(body)


def follow_progress(client: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """Poll the entry and draw a progress bar until it is ready or failed."""
    label = entry["source"][:40]
    total = max(entry["progress"]["bytes_total"], 1)
    bar: Any
    with click.progressbar(length=total, label=label, show_eta=True, show_percent=True) as bar:
        shown = 0
        while entry["state"] not in ("ready", "failed"):
            time.sleep(0.25)
            entry = client.get(f"/v1/resources/{entry['id']}")
            done = entry["progress"]["bytes_done"]
            if entry["progress"]["bytes_total"] and entry["progress"]["bytes_total"] != bar.length:
                bar.length = entry["progress"]["bytes_total"]
            bar.update(max(0, done - shown))
            shown = max(shown, done)
        if entry["state"] == "ready":
            bar.update(max(0, (bar.length or 0) - shown))
    return entry


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
