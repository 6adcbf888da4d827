"""Nosana's `restart_policy` as Docker's, as Nosana's node hands it to its engine."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.jobs.container import docker_restart_policy
from daemon.jobs.spec import parse_job


def policy_of(value: Any) -> Any:
    definition = {
        "version": "0.1",
        "type": "container",
        "ops": [
            {
                "type": "container/run",
                "id": "a",
                "args": {"image": "ubuntu", "restart_policy": value},
            }
        ],
    }
    [op] = parse_job(definition).run_ops()
    return op.args.restart_policy


@pytest.mark.parametrize(
    ("nosana", "docker"),
    [
        ("no", None),
        ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
        ("unless-stopped", {"Name": "unless-stopped"}),
        # A container the daemon stopped must stay stopped when the engine restarts.
        ("always", {"Name": "unless-stopped"}),
        ({"policy": "on-failure"}, {"Name": "on-failure", "MaximumRetryCount": 0}),
        (
            {"policy": "on-failure", "restart_tries": 3},
            {"Name": "on-failure", "MaximumRetryCount": 3},
        ),
    ],
)
def test_each_policy_becomes_dockers(nosana: Any, docker: Any) -> None:
    assert docker_restart_policy(policy_of(nosana)) == docker


def test_no_policy_is_no_restart() -> None:
    assert docker_restart_policy(None) is None
