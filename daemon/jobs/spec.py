"""Nosana job definitions in, validated models out: `parse_job` accepts what Nosana's own
validator (`@nosana/types`) accepts and refuses what it refuses, every error with its path.

The steps: `%%global.variables.NAME%%` literals are filled (variables.py); the document is
validated against the models (definition.py, which say where the daemon is deliberately
stricter than Nosana and why); references across the job are checked (graph.py: dependencies,
cycles, volumes, targets, ports); then `global` gives its defaults (image, gpu, entrypoint,
env, work_dir) to every `container/run` op. Other literals (`%%ops.<id>.results.<name>%%`)
stay as they are, to be filled when the op starts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from ..errors import FieldError, InvalidInput, TooLarge
from ..resources import (
    OLLAMA_DEFAULT_TARGET,
    HFResource,
    OllamaResource,
    S3Resource,
    describe,
    field_errors,
)
from ..util.limits import JOB_OPS, JSON_DEPTH, Bound, json_depth
from ..util.literals import JOB
from .definition import JobDefinition, ResultPattern, RunArgs, RunOp, VolumeOp
from .graph import Waits, is_service, needs_network, order, reference_errors
from .variables import fill_variables

__all__ = [
    "JobDefinition",
    "ResultPattern",
    "RunOp",
    "VolumeOp",
    "Waits",
    "is_service",
    "mount_target",
    "needs_network",
    "order",
    "parse_job",
]

_DEFAULTED = ("image", "gpu", "entrypoint", "work_dir")


def parse_job(data: Any, *, max_ops: int = JOB_OPS.limit) -> JobDefinition:
    """A validated job definition, or `InvalidInput` listing every problem with its path.

    Its size is checked first (`job.ops`, `json.depth`: `TooLarge`), so that what follows
    costs time and memory in proportion to a job within the bounds; each step after is linear
    in the job's size, and none recurses as deep as the job's shape (`max_ops` is for tests
    of that growth past the bound)."""
    if not isinstance(data, dict):
        raise InvalidInput("a job definition is a JSON object", [FieldError("", "not an object")])
    _check_size(data, replace(JOB_OPS, limit=max_ops))
    errors: list[FieldError] = []
    filled = fill_variables(data, errors)
    try:
        job = JobDefinition.model_validate(filled, context=JOB)
    except ValidationError as exc:
        errors.extend(field_errors(exc, "", filled))
        job = None
    if job is not None:
        errors.extend(reference_errors(job))
    if errors:
        raise InvalidInput(f"invalid job: {describe(errors[0])}", errors)
    assert job is not None
    return _apply_global(job)


def _check_size(data: dict[str, Any], ops_bound: Bound) -> None:
    ops = data.get("ops")
    too_many = ops_bound.over(len(ops), "the job") if isinstance(ops, list) else None
    if too_many:
        raise TooLarge(too_many, [FieldError("ops", too_many)])
    if json_depth(data, JSON_DEPTH.limit) > JSON_DEPTH.limit:
        said = f"the job nests deeper than {JSON_DEPTH.limit} levels (bound {JSON_DEPTH.name})"
        raise TooLarge(said, [FieldError("", said)])


def _apply_global(job: JobDefinition) -> JobDefinition:
    """`global` gives its defaults to every `container/run` op (env merged, op wins)."""
    glob = job.global_
    if glob is None:
        return job
    ops: list[RunOp | VolumeOp] = []
    for op in job.ops:
        if isinstance(op, RunOp):
            op = op.model_copy(update={"args": _defaults(op.args, glob.model_dump())})
        ops.append(op)
    return job.model_copy(update={"ops": ops})


def _defaults(args: RunArgs, glob: dict[str, Any]) -> RunArgs:
    update = {
        key: glob[key]
        for key in _DEFAULTED
        if glob.get(key) is not None and getattr(args, key) is None
    }
    if glob.get("env") is not None:
        update["env"] = {**glob["env"], **(args.env or {})}
    return args.model_copy(update=update)


def mount_target(resource: HFResource | S3Resource | OllamaResource) -> str:
    """Where a resource is mounted in the container (Ollama has a default, the others must say)."""
    if isinstance(resource, OllamaResource):
        return resource.target or OLLAMA_DEFAULT_TARGET
    assert resource.target is not None, "validated: HF and S3 resources of ops have a target"
    return resource.target
