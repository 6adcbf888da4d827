"""Mount points and environment names that could only fail when the op starts, or that
would replace what the container needs, are refused at validation with their place (issue 25;
each is a listed difference from Nosana's validator in tests/conformance/differences.py)."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.errors import InvalidInput
from daemon.jobs.spec import parse_job

HF = {"type": "HF", "repo": "org/name"}
VOLUME = {"type": "container/create-volume", "id": "v", "args": {"name": "cache"}}


def job(*ops: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": "0.1", "type": "container", "ops": list(ops), **top}


def run(**args: Any) -> dict[str, Any]:
    return {"type": "container/run", "id": "a", "args": {"image": "busybox", **args}}


def errors(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_job(document)
    return {e.loc: e.msg for e in caught.value.errors}


TARGET = "ops[0].args.resources[0].target"
DEST = "ops[1].args.volumes[0].dest"
REFUSED: dict[str, tuple[dict[str, Any], str, str]] = {
    "root": (job(run(resources=[HF | {"target": "/"}])), TARGET, "container's root"),
    "root, spelt long": (job(run(resources=[HF | {"target": "//./"}])), TARGET, "root"),
    "proc": (job(run(resources=[HF | {"target": "/proc"}])), TARGET, "is /proc"),
    "under sys": (job(run(resources=[HF | {"target": "/sys/x/"}])), TARGET, "under /sys"),
    "dev": (job(run(resources=[HF | {"target": "/dev/"}])), TARGET, "is /dev"),
    "NUL in a target": (job(run(resources=[HF | {"target": "/m\0"}])), TARGET, "NUL"),
    "volume at root": (
        job(VOLUME, run(volumes=[{"name": "cache", "dest": "/"}]) | {"id": "b"}),
        DEST,
        "root",
    ),
    "volume under proc": (
        job(VOLUME, run(volumes=[{"name": "cache", "dest": "/proc/1"}]) | {"id": "b"}),
        DEST,
        "under /proc",
    ),
    "empty env name": (job(run(env={"": "x"})), 'ops[0].args.env[""]', "needs a name"),
    "= in an env name": (
        job(run(env={"PATH=/tmp": "x"})),
        'ops[0].args.env["PATH=/tmp"]',
        "no '='",
    ),
    "NUL in an env name": (job(run(env={"A\0": "x"})), 'ops[0].args.env["A\\u0000"]', "NUL"),
    "NUL in an env value": (job(run(env={"A": "\0"})), "ops[0].args.env.A", "NUL"),
    "= in a global env name": (
        job(run(), **{"global": {"env": {"A=B": "x"}}}),
        'global.env["A=B"]',
        "no '='",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_what_would_fail_when_the_op_starts_is_refused_with_its_place(case: str) -> None:
    document, loc, said = REFUSED[case]
    found = errors(document)
    assert loc in found, found
    assert said in found[loc]


def test_places_beside_the_engines_own_are_mounts_like_any() -> None:
    parse_job(job(run(resources=[HF | {"target": "/dev/shm/models"}])))
    parse_job(job(run(resources=[HF | {"target": "/process"}], env={"A_B": "=x"})))
    parse_job(job(run(resources=[HF | {"target": "/system/m"}])))
