"""`nosana-cache jobs ...`: submit Nosana job definitions and follow them.

Job records are the daemon's JSON, read as `dict[str, Any]` (render.py says why)."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import click

from ..jobs.states import FINAL, JobState, OpState
from ..util.clock import SystemClock
from . import render
from .client import ApiError, Client, DaemonUnreachable
from .common import Options, client_command, global_options, is_terminal

SERVICE_POLL = 0.5
"""How often --follow looks for services that became ready (or unhealthy)."""


@global_options
@click.group()
def jobs() -> None:
    """Run Nosana job definitions with cached images and resources.

    \b
    Examples:
      nosana-cache jobs submit job.json --follow     run it, print its output, exit with its outcome
      nosana-cache jobs check job.json               valid? what is cached, what would be fetched
      nosana-cache jobs ls
      nosana-cache jobs show 3f2a9c1e0b7d4a5e
      nosana-cache jobs logs 3f2a9c1e0b7d4a5e --op train --follow
      nosana-cache jobs stop 3f2a9c1e0b7d4a5e
    """


@client_command(jobs, "submit")
@click.argument("definition", type=click.File("r"))
@click.option("--wait", is_flag=True, help="Wait for the job to end; exit 0 only if it completed.")
@click.option("--follow", is_flag=True, help="Print the ops' output as it comes (implies --wait).")
@click.option("--id", "job_id", help="Name the job (default: a random id).")
def jobs_submit(
    options: Options, definition: Any, wait: bool, follow: bool, job_id: str | None
) -> Any:
    """Submit a job definition (a JSON file, or - for stdin). With --follow, each service's
    readiness and URLs are said on stderr as they come."""
    body = _read(definition)
    client = options.client()
    record = client.request("POST", "/v1/jobs", body=body, params={"id": job_id})
    if not (wait or follow):
        return record, f"submitted {record['id']}"
    if follow:
        _follow(client, record)
    # The last op's output can end a moment before the job is recorded as ended: wait for
    # the outcome itself, not for the output.
    record = _wait(client, record["id"])
    code = 0 if record["state"] == JobState.COMPLETED else 1
    return record, render.job_summary(record), code


@client_command(jobs, "check")
@click.argument("definition", type=click.File("r"))
def jobs_check(options: Options, definition: Any) -> Any:
    """Validate a job definition as submit does, and say what running it would take: each
    image and resource, cached or not (until when), bytes to fetch where known, what would be
    mounted where. A dry run: nothing is created, fetched or pulled. Exit 0 if valid, 1 with
    each error's location if not."""
    body = _read(definition)
    plan = options.client().request("POST", "/v1/jobs", body=body, params={"dry_run": True})
    return plan, render.plan(plan, SystemClock().now())


def _read(definition: Any) -> Any:
    try:
        return json.load(definition)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="DEFINITION") from exc


def _wait(client: Client, job_id: str) -> dict[str, Any]:
    while True:
        record: dict[str, Any] = client.get(f"/v1/jobs/{job_id}")
        if record["state"] in FINAL:
            return record
        time.sleep(0.25)


def _follow(client: Client, record: dict[str, Any]) -> None:
    """Each op's output in turn, as it comes; preparation shown on a terminal; services'
    readiness on stderr, from a thread of its own (a service's output never ends)."""
    job_id = record["id"]
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch_services, args=(client, job_id, done), name="services", daemon=True
    )
    watcher.start()
    try:
        _follow_output(client, record)
    finally:
        done.set()
        watcher.join(timeout=5)


def _watch_services(client: Client, job_id: str, done: threading.Event) -> None:
    """Say on stderr when a service becomes ready (with its URLs), unhealthy or healthy
    again, until the job ends."""
    seen: dict[str, dict[str, Any]] = {}
    while True:
        try:
            record: dict[str, Any] = client.get(f"/v1/jobs/{job_id}")
        except (ApiError, DaemonUnreachable):
            return  # the output's stream says what went wrong

        for op in record["ops"]:
            news = render.service_news(op, seen.get(op["id"]))
            if news:
                click.echo(news, err=True)
            seen[op["id"]] = op
        if record["state"] in FINAL or done.wait(SERVICE_POLL):
            return


def _follow_output(client: Client, record: dict[str, Any]) -> None:
    job_id = record["id"]
    for op in record["ops"]:
        while True:
            current = client.get(f"/v1/jobs/{job_id}")
            state = next(o for o in current["ops"] if o["id"] == op["id"])["state"]
            if state == OpState.RUNNING or state in FINAL:
                break
            if is_terminal():
                click.echo(f"\r{op['id']}: {state}…", nl=False, err=True)
            time.sleep(0.25)
        if is_terminal():
            click.echo(f"\r{op['id']}: running      ", err=True)
        for line in client.stream_lines(f"/v1/jobs/{job_id}/logs", op=op["id"], follow=True):
            sys.stdout.buffer.write(line)
            sys.stdout.flush()


@client_command(jobs, "ls")
@click.option(
    "--state",
    multiple=True,
    type=click.Choice([s.value for s in JobState]),
)
def jobs_ls(options: Options, state: tuple[str, ...]) -> Any:
    """List jobs, newest first."""
    body = options.client().get("/v1/jobs", state=",".join(state) or None)
    return body, render.jobs(body, SystemClock().now())


@client_command(jobs, "show")
@click.argument("job_id")
def jobs_show(options: Options, job_id: str) -> Any:
    """One job: its ops, states, exit codes, timings and cache hits."""
    body = options.client().get(f"/v1/jobs/{job_id}")
    return body, render.job(body)


@client_command(jobs, "logs")
@click.argument("job_id")
@click.option("--op", "op_id", help="One op's output (default: every op, prefixed).")
@click.option("--stream", type=click.Choice(["stdout", "stderr"]), help="Only one stream.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the op ends.")
def jobs_logs(
    options: Options, job_id: str, op_id: str | None, stream: str | None, follow: bool
) -> Any:
    """Print a job's output."""
    lines = options.client().stream_lines(
        f"/v1/jobs/{job_id}/logs", op=op_id, stream=stream, follow=follow or None
    )
    for line in lines:
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
    return None


@client_command(jobs, "stop")
@click.argument("job_id")
def jobs_stop(options: Options, job_id: str) -> Any:
    """Stop a job's containers."""
    body = options.client().request("POST", f"/v1/jobs/{job_id}/stop")
    return body, f"{body['id']}: {body['state']}"
