"""Nosana job definitions (version "0.1", type "container"), validated as strictly as Nosana's
own node does: an unknown property anywhere is an error naming its path.

Before validation, `%%global.variables.NAME%%` placeholders are filled from
`global.variables`, and `global` gives its defaults (image, gpu, entrypoint, env, work_dir)
to every `container/run` op. After it: op ids are unique, every `depends_on` names an op, and
the order the ops run in (groups one after another, `depends_on` edges) has no cycle.
`%%ops.<id>.results.<name>%%` placeholders stay as they are: they name results of earlier
ops and are filled when the op starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..errors import FieldError, InvalidInput
from ..resources import (
    OLLAMA_DEFAULT_TARGET,
    HFResource,
    OllamaResource,
    Resource,
    S3Resource,
    describe,
    field_errors,
)

_VARIABLE = re.compile(r"%%global\.variables\.([A-Za-z0-9_.-]+)%%")
_OP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PORT_RANGE = re.compile(r"^(\d+)-(\d+)$")
_DEFAULTED = ("image", "gpu", "entrypoint", "work_dir")


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path")
    return value


def _op_id(value: str) -> str:
    if not _OP_ID.match(value):
        raise ValueError(f"{value!r} is not an op id (letters, digits, _ . -; up to 63)")
    return value


def _port(value: int | str) -> int | str:
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise ValueError(f"{value} is not a port")
        return value
    if value.startswith("%%"):
        return value  # a placeholder filled at run time
    match = _PORT_RANGE.match(value)
    if not match or not 1 <= int(match[1]) < int(match[2]) <= 65535:
        raise ValueError(f"{value!r} is not a port or a range 'start-end'")
    return value


AbsolutePath = Annotated[str, AfterValidator(_absolute)]
OpId = Annotated[str, AfterValidator(_op_id)]
Port = Annotated[int | str, AfterValidator(_port)]
StrOrList = str | list[str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class HttpHealthCheck(_Strict):
    type: Literal["http"]
    path: str
    method: Literal["GET", "POST", "PUT", "DELETE"]
    expected_status: int
    headers: dict[str, str] | None = None
    body: Any = None
    continuous: bool


class WebSocketHealthCheck(_Strict):
    type: Literal["websocket"]
    expected_response: str
    continuous: bool


class ExposedPort(_Strict):
    port: Port
    type: Literal["web", "api", "websocket", "webapi", "none"] | None = None
    health_checks: (
        list[Annotated[HttpHealthCheck | WebSocketHealthCheck, Field(discriminator="type")]] | None
    ) = None


class DockerAuth(_Strict):
    username: str | None = None
    password: str | None = None
    email: str | None = None
    server: str | None = None


class Authentication(_Strict):
    docker: DockerAuth | None = None


class VolumeMount(_Strict):
    name: str = Field(min_length=1)
    dest: AbsolutePath


class RunArgs(_Strict):
    image: str = Field(min_length=1)
    cmd: StrOrList | None = None
    entrypoint: StrOrList | None = None
    env: dict[str, str] | None = None
    work_dir: AbsolutePath | None = None
    gpu: bool | None = None
    expose: Port | ExposedPort | list[Port | ExposedPort] | None = None
    private: bool | None = None
    aliases: StrOrList | None = None
    volumes: list[VolumeMount] | None = None
    required_vram: int | float | None = None
    resources: list[Resource] | None = None
    authentication: Authentication | None = None
    restart_policy: str | None = None
    output: str | None = None

    def ports(self) -> list[ExposedPort]:
        items = self.expose if isinstance(self.expose, list) else [self.expose]
        return [p if isinstance(p, ExposedPort) else ExposedPort(port=p) for p in items if p]


class VolumeArgs(_Strict):
    name: str = Field(min_length=1)


class Execution(_Strict):
    group: str | None = Field(None, min_length=1)
    depends_on: list[str] | None = None
    stop_if_dependent_stops: bool | None = None


LogType = Literal["stdin", "stdout", "stderr", "nodeerr"]


class ResultPattern(_Strict):
    regex: str
    logType: list[LogType] = Field(min_length=1, max_length=4)


class _Op(_Strict):
    id: OpId
    results: dict[str, str | ResultPattern] | None = None
    execution: Execution | None = None


class RunOp(_Op):
    type: Literal["container/run"]
    args: RunArgs


class VolumeOp(_Op):
    type: Literal["container/create-volume"]
    args: VolumeArgs


Op = Annotated[RunOp | VolumeOp, Field(discriminator="type")]


class Global(_Strict):
    image: str | None = None
    gpu: bool | None = None
    entrypoint: StrOrList | None = None
    env: dict[str, str] | None = None
    work_dir: AbsolutePath | None = None
    variables: dict[str, str] | None = None


class Meta(BaseModel):
    """Free-form by Nosana's own types (`[key: string]: unknown`), typed where it is known."""

    model_config = ConfigDict(extra="allow", frozen=True)
    trigger: str | None = None
    system_resources: dict[str, str | int | float] | None = None


class LogisticsLeg(_Strict):
    type: Literal["api", "api-listen"]
    args: dict[str, str]


class Logistics(_Strict):
    send: LogisticsLeg | None = None
    receive: LogisticsLeg | None = None


class JobDefinition(_Strict):
    version: str = Field(min_length=1)
    type: Literal["container"]
    meta: Meta | None = None
    global_: Global | None = Field(None, alias="global")
    ops: list[Op] = Field(min_length=1)
    logistics: Logistics | None = None
    deployment_id: str | None = None

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    def run_ops(self) -> Iterator[RunOp]:
        return (op for op in self.ops if isinstance(op, RunOp))


def parse_job(data: Any) -> JobDefinition:
    """A validated job definition, or `InvalidInput` listing every problem with its path."""
    if not isinstance(data, dict):
        raise InvalidInput("a job definition is a JSON object", [FieldError("", "not an object")])
    errors: list[FieldError] = []
    filled = _fill_variables(data, errors)
    _apply_global(filled)
    try:
        job = JobDefinition.model_validate(filled)
    except ValidationError as exc:
        errors.extend(field_errors(exc, "", filled))
        job = None
    if job is not None:
        errors.extend(_check_graph(job))
    if errors:
        raise InvalidInput(f"invalid job: {describe(errors[0])}", errors)
    assert job is not None
    return job


def _fill_variables(data: dict[str, Any], errors: list[FieldError]) -> dict[str, Any]:
    """`%%global.variables.NAME%%` replaced everywhere but in the variables themselves."""
    glob = data.get("global")
    variables = glob.get("variables") if isinstance(glob, dict) else None
    variables = variables if isinstance(variables, dict) else {}

    def fill(value: Any, loc: str) -> Any:
        if isinstance(value, str):

            def replace(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in variables or not isinstance(variables[name], str):
                    errors.append(FieldError(loc, f"no variable {name!r} in global.variables"))
                    return match.group(0)
                return str(variables[name])

            return _VARIABLE.sub(replace, value)
        if isinstance(value, list):
            return [fill(v, f"{loc}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {
                k: v
                if loc == "global" and k == "variables"
                else fill(v, f"{loc}.{k}" if loc else k)
                for k, v in value.items()
            }
        return value

    filled: dict[str, Any] = fill(data, "")
    return filled


def _apply_global(data: dict[str, Any]) -> None:
    """`global` gives its defaults to every `container/run` op (env merged, op wins)."""
    glob = data.get("global")
    ops = data.get("ops")
    if not isinstance(glob, dict) or not isinstance(ops, list):
        return
    for op in ops:
        if not isinstance(op, dict) or op.get("type") != "container/run":
            continue
        args = op.setdefault("args", {})
        if not isinstance(args, dict):
            continue
        for key in _DEFAULTED:
            if key in glob and key not in args:
                args[key] = glob[key]
        if isinstance(glob.get("env"), dict):
            op_env = args.get("env")
            if op_env is None or isinstance(op_env, dict):
                args["env"] = {**glob["env"], **(op_env or {})}


def _check_graph(job: JobDefinition) -> list[FieldError]:
    errors: list[FieldError] = []
    ids: dict[str, int] = {}
    for index, op in enumerate(job.ops):
        if op.id in ids:
            errors.append(FieldError(f"ops[{index}].id", f"duplicate op id {op.id!r}"))
        ids.setdefault(op.id, index)
    for index, op in enumerate(job.ops):
        for position, dependency in enumerate(_depends_on(op)):
            if dependency not in ids:
                loc = f"ops[{index}].execution.depends_on[{position}]"
                errors.append(FieldError(loc, f"no op {dependency!r} in this job"))
            elif dependency == op.id:
                errors.append(
                    FieldError(
                        f"ops[{index}].execution.depends_on[{position}]", "depends on itself"
                    )
                )
    if not errors:
        cycle = _cycle(job)
        if cycle:
            errors.append(
                FieldError("ops", "the ops depend on each other in a cycle: " + " → ".join(cycle))
            )
    volumes = {op.args.name for op in job.ops if isinstance(op, VolumeOp)}
    for index, op in enumerate(job.ops):
        if isinstance(op, RunOp):
            for position, volume in enumerate(op.args.volumes or []):
                if volume.name not in volumes:
                    loc = f"ops[{index}].args.volumes[{position}].name"
                    errors.append(
                        FieldError(loc, f"no container/create-volume op makes {volume.name!r}")
                    )
            for position, resource in enumerate(op.args.resources or []):
                if isinstance(resource, HFResource | S3Resource) and resource.target is None:
                    loc = f"ops[{index}].args.resources[{position}].target"
                    errors.append(FieldError(loc, "required: where the resource is mounted"))
    return errors


def _depends_on(op: RunOp | VolumeOp) -> list[str]:
    return list(op.execution.depends_on or []) if op.execution else []


def predecessors(job: JobDefinition) -> dict[str, set[str]]:
    """What each op waits for: every op of the earlier stages, and its `depends_on`.

    Stages follow the order of the definition: the ops of one `execution.group` form one
    stage (at the place the group first appears), an op without a group a stage of its own.
    """
    stage_of: dict[str, int] = {}
    stages: list[list[str]] = []
    group_stage: dict[str, int] = {}
    for op in job.ops:
        group = op.execution.group if op.execution else None
        if group is not None and group in group_stage:
            stage = group_stage[group]
        else:
            stage = len(stages)
            stages.append([])
            if group is not None:
                group_stage[group] = stage
        stages[stage].append(op.id)
        stage_of[op.id] = stage
    waits: dict[str, set[str]] = {}
    for op in job.ops:
        earlier = {o for s in stages[: stage_of[op.id]] for o in s}
        waits[op.id] = earlier | set(_depends_on(op))
    return waits


def _cycle(job: JobDefinition) -> list[str] | None:
    waits = predecessors(job)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for before in sorted(waits.get(node, ())):
            if state.get(before) == 1:
                return [*path[path.index(before) :], before]
            if state.get(before) is None:
                found = visit(before)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for op in job.ops:
        if state.get(op.id) is None:
            found = visit(op.id)
            if found:
                return found
    return None


def mount_target(resource: HFResource | S3Resource | OllamaResource) -> str:
    """Where a resource is mounted in the container (Ollama has a default, the others must say)."""
    if isinstance(resource, OllamaResource):
        return resource.target or OLLAMA_DEFAULT_TARGET
    assert resource.target is not None, "validated: HF and S3 resources of ops have a target"
    return resource.target
