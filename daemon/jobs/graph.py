"""The order a job's ops run in, and what ops refer to across the job.

Ops of one `execution.group` run together, groups one after another in the order they first
appear, and `depends_on` adds edges. Nosana's validator checks none of the references
(`depends_on` naming no op, a cycle, a volume that no op makes): its node finds out when the
job runs. The daemon refuses them up front, naming the place.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FieldError
from ..resources import HFResource, S3Resource
from .definition import JobDefinition, RunOp, VolumeOp
from .ports import duplicate_ports


def reference_errors(job: JobDefinition) -> list[FieldError]:
    """Op ids used twice, dependencies that name no op or the op itself, cycles, volumes that
    no op makes, HF and S3 resources without a `target`, ports exposed twice."""
    errors = [*_duplicate_ids(job), *_dependency_errors(job)]
    if not errors:
        cycle = _cycle(job)
        if cycle:
            errors.append(
                FieldError("ops", "the ops depend on each other in a cycle: " + " → ".join(cycle))
            )
    volumes = {op.args.name for op in job.ops if isinstance(op, VolumeOp)}
    for index, op in enumerate(job.ops):
        if not isinstance(op, RunOp):
            continue
        where = f"ops[{index}].args"
        errors += duplicate_ports(op.args.expose, f"{where}.expose")
        for position, volume in enumerate(op.args.volumes or []):
            if volume.name not in volumes:
                loc = f"{where}.volumes[{position}].name"
                errors.append(
                    FieldError(loc, f"no container/create-volume op makes {volume.name!r}")
                )
        for position, entry in enumerate(op.args.resource_entries or []):
            if isinstance(entry, HFResource | S3Resource) and entry.target is None:
                loc = f"{where}.resources[{position}].target"
                errors.append(FieldError(loc, "required: where the resource is mounted"))
    return errors


def _dependency_errors(job: JobDefinition) -> list[FieldError]:
    errors: list[FieldError] = []
    ids = {op.id for op in job.ops}
    for index, op in enumerate(job.ops):
        for position, dependency in enumerate(_depends_on(op)):
            loc = f"ops[{index}].execution.depends_on[{position}]"
            if dependency not in ids:
                errors.append(FieldError(loc, f"no op {dependency!r} in this job"))
            elif dependency == op.id:
                errors.append(FieldError(loc, "depends on itself"))
    return errors


def _duplicate_ids(job: JobDefinition) -> list[FieldError]:
    seen: set[str] = set()
    errors: list[FieldError] = []
    for index, op in enumerate(job.ops):
        if op.id in seen:
            errors.append(FieldError(f"ops[{index}].id", f"duplicate op id {op.id!r}"))
        seen.add(op.id)
    return errors


def _depends_on(op: RunOp | VolumeOp) -> list[str]:
    return list(op.execution.depends_on or []) if op.execution else []


@dataclass(frozen=True)
class Waits:
    """What an op waits for before it starts."""

    stages: frozenset[str]
    """Every op of the stage before its own: each must have completed (a stage ends when all
    of its ops have, as a group does on Nosana's node; the stages before that one had ended
    before any of its ops started). One set per stage, shared by the stage's ops."""
    depends_on: frozenset[str]
    """Its `depends_on`: each must have completed, or, for an op that exposes ports (a
    service, which may never end), be ready: Nosana's node starts the ops that depend on a
    service once its health checks pass."""

    def met(self, completed: set[str], ready: set[str]) -> bool:
        return self.stages <= completed and self.depends_on <= completed | ready


def order(job: JobDefinition) -> dict[str, Waits]:
    """What each op waits for directly: every op of the stage before its own, and its
    `depends_on` (the stages before that one it waits for through that one).

    Stages follow the order of the definition: the ops of one `execution.group` form one
    stage (at the place the group first appears), an op without a group a stage of its own.
    """
    stages, stage_of = _stages(job)
    before = [frozenset[str](), *(frozenset(stage) for stage in stages[:-1])]
    return {op.id: Waits(before[stage_of[op.id]], frozenset(_depends_on(op))) for op in job.ops}


def is_service(op: RunOp | VolumeOp) -> bool:
    """An op that exposes ports: its dependents wait for it to be ready, not to end."""
    return isinstance(op, RunOp) and op.args.expose is not None


def needs_network(job: JobDefinition) -> bool:
    """Whether the job's ops need a network of their own to reach each other: more than one
    container, or `aliases` to answer to."""
    run_ops = list(job.run_ops())
    return len(run_ops) > 1 or any(op.args.aliases for op in run_ops)


def _stages(job: JobDefinition) -> tuple[list[list[str]], dict[str, int]]:
    """The ops of each stage, in order, and the stage of each op."""
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
    return stages, stage_of


Node = str | int
"""An op (its id), or the end of a stage (its number): every op of stage k+1 waits for the
end of stage k, which waits for each op of stage k. Two large groups in a row are then
2n edges, not n²."""


def edges(job: JobDefinition) -> dict[Node, list[Node]]:
    """What each node of the job's graph waits for, with the stages' ends between stages."""
    stages, stage_of = _stages(job)
    graph: dict[Node, list[Node]] = {}
    for op in job.ops:
        stage = stage_of[op.id]
        graph[op.id] = ([stage - 1] if stage else []) + sorted(set(_depends_on(op)))
    for number, stage_ops in enumerate(stages):
        graph[number] = list(stage_ops)
    return graph


def _cycle(job: JobDefinition) -> list[str] | None:
    """The ops of a cycle in what they wait for, the first one again at the end; None when
    there is none. A depth-first search with a stack of its own: a chain of ops as long as
    a job may have never reaches the interpreter's recursion limit."""
    graph = edges(job)
    state: dict[Node, bool] = {}
    """Absent: not seen; True: on the path being searched; False: done, no cycle through it."""
    for op in job.ops:
        if op.id in state:
            continue
        path: list[Node] = [op.id]
        stack = [iter(graph[op.id])]
        state[op.id] = True
        while stack:
            after = next(stack[-1], None)
            if after is None:
                state[path.pop()] = False
                stack.pop()
            elif state.get(after) is True:
                cycle = [*path[path.index(after) :], after]
                return [node for node in cycle if isinstance(node, str)]
            elif after not in state:
                state[after] = True
                path.append(after)
                stack.append(iter(graph[after]))
    return None
