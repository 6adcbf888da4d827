"""The models of a Nosana job definition (version "0.1", type "container"), property by
property as Nosana's validator (`@nosana/types`) has them: an unknown property anywhere, or a
`null` for a property that may only be left out, is an error naming its path.

Where Nosana's validator takes any string or number but the daemon must act on the value, the
daemon checks its form as well (an absolute path, a mount point, a port, a repo id, an
environment variable's name); each such difference is listed with its reason in
tests/conformance. Properties the daemon does not act on yet
(`restart_policy`, `aliases`, `private`, health checks, `logistics`, `deployment_id`) are
parsed into typed values all the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)

from ..resources import HFResource, OllamaResource, S3Resource, mount_target_problem
from ..util.literals import deferred
from ..util.strict import Strict, by_kind, by_type
from .markers import ResourceEntry, concrete_resources
from .ports import Expose, ExposedPort, WholeNumber, concrete_ports


def _absolute(value: str, info: ValidationInfo) -> str:
    if not value.startswith("/") and not deferred(value, info):
        raise ValueError(f"{value!r} must be an absolute path")
    return value


def _mount_point(value: str, info: ValidationInfo) -> str:
    if deferred(value, info):
        return value
    problem = mount_target_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _env_name(value: str) -> str:
    """What Docker can set: `NAME=value` is split at the first `=`, so a name holding one
    sets another variable (`PATH=/x` would replace PATH); an empty name or a NUL fails when
    the container is created."""
    if not value:
        raise ValueError("an environment variable needs a name")
    if "=" in value or "\x00" in value:
        raise ValueError(f"{value!r} is not a variable's name: no '=' or NUL in a name")
    return value


def _env_value(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a NUL character cannot be in a variable's value")
    return value


def _op_id(value: str) -> str:
    if " " in value:
        raise ValueError(f"{value!r} is not an op id: any text without a space")
    return value  # any other text: containers, volumes and files are named by op_key


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"{value} is not a number of tries")
    return value


AbsolutePath = Annotated[str, AfterValidator(_absolute)]
MountPoint = Annotated[str, AfterValidator(_mount_point)]
Env = dict[Annotated[str, AfterValidator(_env_name)], Annotated[str, AfterValidator(_env_value)]]
OpId = Annotated[str, AfterValidator(_op_id)]
StrOrList = Annotated[
    Annotated[str, Tag("string")] | Annotated[list[str], Tag("list")],
    by_kind("a string or a list of strings"),
]


class DockerAuth(Strict):
    username: str | None = None
    password: str | None = None
    email: str | None = None
    server: str | None = None


class Authentication(Strict):
    docker: DockerAuth | None = None


class VolumeMount(Strict):
    name: str
    dest: MountPoint


class RestartOnFailure(Strict):
    policy: Literal["on-failure"]
    restart_tries: Annotated[WholeNumber, AfterValidator(_not_negative)] | None = None


RestartPolicy = Annotated[
    Annotated[Literal["no", "always", "unless-stopped", "on-failure"], Tag("string")]
    | Annotated[RestartOnFailure, Tag("object")],
    by_kind("no, always, unless-stopped, on-failure or {policy: on-failure, restart_tries}"),
]


class RunArgs(Strict):
    image: str = Field(min_length=1)
    cmd: StrOrList | None = None
    entrypoint: StrOrList | None = None
    env: Env | None = None
    work_dir: AbsolutePath | None = None
    gpu: bool | None = None
    expose: Expose | None = None
    private: bool | None = None
    aliases: StrOrList | None = None
    volumes: list[VolumeMount] | None = None
    resource_entries: list[ResourceEntry] | None = Field(None, alias="resources")
    """As written, with Nosana's markers; `resources` has the ones known now."""
    authentication: Authentication | None = None
    restart_policy: RestartPolicy | None = None

    @property
    def resources(self) -> list[HFResource | S3Resource | OllamaResource] | None:
        return concrete_resources(self.resource_entries)

    def ports(self) -> list[ExposedPort]:
        return concrete_ports(self.expose)


class VolumeArgs(Strict):
    name: str


class Execution(Strict):
    group: str | None = None
    depends_on: list[str] | None = None
    stop_if_dependent_stops: bool | None = None

    @field_validator("stop_if_dependent_stops")
    @classmethod
    def _with_dependencies(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value is not None and info.data.get("depends_on") is None:
            raise ValueError("only with `depends_on`")
        return value


LogType = Literal["stdin", "stdout", "stderr", "nodeerr"]


def _unique(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("each log type at most once")
    return value


class ResultPattern(Strict):
    regex: str
    logType: Annotated[list[LogType], AfterValidator(_unique)] = Field(min_length=1, max_length=4)


Result = Annotated[
    Annotated[str, Tag("string")] | Annotated[ResultPattern, Tag("object")],
    by_kind("a regex or {regex, logType}"),
]


class _Op(Strict):
    id: OpId
    results: dict[str, Result] | None = None
    execution: Execution | None = None


class RunOp(_Op):
    type: Literal["container/run"]
    args: RunArgs


class VolumeOp(_Op):
    type: Literal["container/create-volume"]
    args: VolumeArgs


Op = Annotated[
    Annotated[RunOp, Tag("container/run")] | Annotated[VolumeOp, Tag("container/create-volume")],
    by_type,
]


class Global(Strict):
    image: str | None = None
    gpu: bool | None = None
    entrypoint: StrOrList | None = None
    env: Env | None = None
    work_dir: AbsolutePath | None = None
    variables: dict[str, str] | None = None


MetaScalar = Annotated[
    Annotated[str, Tag("string")] | Annotated[int | float, Tag("number")],
    by_kind("a string or a number"),
]
_MetaInner = Annotated[
    Annotated[str, Tag("string")]
    | Annotated[int | float, Tag("number")]
    | Annotated[list[MetaScalar], Tag("list")],
    by_kind("a string, a number or a list of them"),
]
MetaValue = Annotated[
    Annotated[str, Tag("string")]
    | Annotated[int | float, Tag("number")]
    | Annotated[list[MetaScalar], Tag("list")]
    | Annotated[dict[str, _MetaInner], Tag("object")],
    by_kind("a string, a number, a list of them or an object of them"),
]


class Meta(Strict):
    """Open to any key (Nosana's dashboard puts its own there), each with a typed value."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    __pydantic_extra__: dict[str, MetaValue] = Field(init=False)
    trigger: str | None = None
    system_resources: dict[str, MetaScalar] | None = None


class LogisticsArgs(Strict):
    endpoint: str | None = None


class LogisticsLeg(Strict):
    type: Literal["api", "api-listen"]
    args: LogisticsArgs


class Logistics(Strict):
    send: LogisticsLeg
    receive: LogisticsLeg


class JobDefinition(Strict):
    version: Literal["0.1"]
    type: Literal["container"]
    meta: Meta | None = None
    global_: Global | None = Field(None, alias="global")
    ops: list[Op]
    logistics: Logistics | None = None
    deployment_id: str | None = None

    def run_ops(self) -> Iterator[RunOp]:
        return (op for op in self.ops if isinstance(op, RunOp))
