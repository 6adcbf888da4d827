"""What a job definition may ask, Nosana's validator accepting it, that the daemon does not
do: said in the job's and each op's record (`not_acted_on`) rather than silently dropped.

- `logistics` (how Nosana's node receives a definition or returns results through Nosana's
  API; here both go through the daemon's own) and `deployment_id` (Nosana's load-balanced
  service URLs).
- `execution.stop_if_dependent_stops`: the op runs on when an op it depends on ends.
- Ports and resources known only when the op starts (`%%...%%` literals standing for an
  `expose` entry, `{__spread__: ...}` markers): not published, not fetched.
- Results read from `stdin` or `nodeerr`: the daemon keeps neither stream.
- `%%...%%` literals the daemon does not fill: `%%ops.<id>.results.<name>%%` and
  `%%ops.<id>.host%%` anywhere but `cmd`, `entrypoint` and `env`, and every other kind
  (`%%global.job%%`, `%%ops.<id>.endpoint.<port>%%`...): they reach the container as written.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from .definition import JobDefinition, ResultPattern, RunOp, VolumeOp
from .fill import LITERAL
from .markers import SpreadMarker
from .ports import ExposedPort, entries

_ANY_LITERAL = re.compile(r"%%(?:ops|globals?)\.[^%\s]+%%")
_FILLED_IN = ("cmd", "entrypoint", "env")
_UNREAD_STREAMS = ("stdin", "nodeerr")


def job_not_acted_on(job: JobDefinition) -> list[str]:
    found = []
    if job.logistics is not None:
        found.append("logistics: definitions and results go through this daemon's API")
    if job.deployment_id is not None:
        found.append("deployment_id: Nosana's load-balanced service URLs")
    return found


def op_not_acted_on(op: RunOp | VolumeOp) -> list[str]:
    found = []
    if op.execution is not None and op.execution.stop_if_dependent_stops:
        found.append("execution.stop_if_dependent_stops: the op runs on when its dependency ends")
    for name, spec in (op.results or {}).items():
        if isinstance(spec, ResultPattern):
            for stream in (s for s in spec.logType if s in _UNREAD_STREAMS):
                found.append(f"results.{name}.logType {stream}: the daemon keeps no such stream")
    if isinstance(op, RunOp):
        found += _run_args(op)
    return found


def _run_args(op: RunOp) -> list[str]:
    found = []
    for index, entry in enumerate(entries(op.args.expose)):
        if not isinstance(entry, int | ExposedPort):
            found.append(f"args.expose[{index}]: ports known when it starts are not published")
    for index, resource in enumerate(op.args.resource_entries or []):
        if isinstance(resource, SpreadMarker):
            found.append(f"args.resources[{index}]: resources known when it starts are not fetched")
    for name, field in type(op.args).model_fields.items():
        key = field.alias or name
        if key == "expose":  # said above
            continue
        for where, text in _strings(getattr(op.args, name), f"args.{key}"):
            for literal in _ANY_LITERAL.findall(text):
                if key in _FILLED_IN and LITERAL.fullmatch(literal):
                    continue
                found.append(f"{where}: {literal} is not filled")
    return found


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    """Every string in `value` with its place (a spread marker aside: said above)."""
    if isinstance(value, SpreadMarker):
        return []
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{where}.{k}")]
    return []
