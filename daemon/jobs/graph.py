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
    """Every op of the earlier stages: each must have completed (a stage ends when all of
    its ops have, as a group does on Nosana's node)."""
    depends_on: frozenset[str]
    """Its `depends_on`: each must have completed, or, for an op that exposes ports (a
    service, which may never end), be ready: Nosana's node starts the ops that depend on a
    service once its health checks pass."""

    def met(self, completed: set[str], ready: set[str]) -> bool:
        return self.stages <= completed and self.depends_on <= completed | ready


def order(job: JobDefinition) -> dict[str, Waits]:
    """What each op waits for (see `predecessors` for the stages)."""
    stages = _stages(job)
    return {op.id: Waits(frozenset(stages[op.id]), frozenset(_depends_on(op))) for op in job.ops}


def is_service(op: RunOp | VolumeOp) -> bool:
    """An op that exposes ports: its dependents wait for it to be ready, not to end."""
    return isinstance(op, RunOp) and op.args.expose is not None


def needs_network(job: JobDefinition) -> bool:
    """Whether the job's ops need a network of their own to reach each other: more than one
    container, or `aliases` to answer to."""
    run_ops = list(job.run_ops())
    return len(run_ops) > 1 or any(op.args.aliases for op in run_ops)


def predecessors(job: JobDefinition) -> dict[str, set[str]]:
    """What each op waits for: every op of the earlier stages, and its `depends_on`.

    Stages follow the order of the definition: the ops of one `execution.group` form one
    stage (at the place the group first appears), an op without a group a stage of its own.
    """
    stages = _stages(job)
    return {op.id: stages[op.id] | set(_depends_on(op)) for op in job.ops}


def _stages(job: JobDefinition) -> dict[str, set[str]]:
    """Every op of the stages before each op's."""
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
    return {op.id: {o for s in stages[: stage_of[op.id]] for o in s} for op in job.ops}


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
