"""What a definition asks that the daemon accepts but does not do is said, by place."""

from __future__ import annotations

from daemon.jobs.ignored import job_not_acted_on, op_not_acted_on
from daemon.jobs.spec import parse_job


def test_everything_not_acted_on_is_named_where_it_is() -> None:
    definition = {
        "version": "0.1",
        "type": "container",
        "deployment_id": "d1",
        "logistics": {
            "send": {"type": "api-listen", "args": {}},
            "receive": {"type": "api", "args": {"endpoint": "https://x"}},
        },
        "ops": [
            {
                "type": "container/run",
                "id": "first",
                "args": {"image": "ubuntu", "cmd": "echo port=8080"},
                "results": {"port": "port=(\\d+)"},
            },
            {
                "type": "container/run",
                "id": "second",
                "args": {
                    "image": "ubuntu",
                    "cmd": [
                        "serve",
                        "%%ops.first.results.port%%",  # filled
                        "%%ops.first.host%%",  # filled
                        "%%ops.first.endpoint.8080%%",
                    ],
                    "env": {"JOB": "%%global.job%%", "PORT": "%%ops.first.results.port%%"},
                    "work_dir": "/srv/%%ops.first.results.port%%",
                    "expose": [
                        8080,
                        "%%ops.first.results.port%%",
                        {"__spread__": "%%ops.first.results.port%%"},
                    ],
                    "resources": [
                        {"__spread__": "%%ops.first.results.port%%"},
                        {"type": "Ollama", "model": "%%ops.first.results.port%%"},
                    ],
                },
                "results": {"errors": {"regex": "x", "logType": ["stdout", "nodeerr"]}},
                "execution": {"depends_on": ["first"], "stop_if_dependent_stops": True},
            },
        ],
    }
    job = parse_job(definition)
    assert job_not_acted_on(job) == [
        "logistics: definitions and results go through this daemon's API",
        "deployment_id: Nosana's load-balanced service URLs",
    ]
    first, second = job.ops
    assert op_not_acted_on(first) == []
    assert op_not_acted_on(second) == [
        "execution.stop_if_dependent_stops: the op runs on when its dependency ends",
        "results.errors.logType nodeerr: the daemon keeps no such stream",
        "args.expose[1]: ports known when it starts are not published",
        "args.expose[2]: ports known when it starts are not published",
        "args.resources[0]: resources known when it starts are not fetched",
        "args.cmd[3]: %%ops.first.endpoint.8080%% is not filled",
        "args.env.JOB: %%global.job%% is not filled",
        "args.work_dir: %%ops.first.results.port%% is not filled",
        "args.resources[1].model: %%ops.first.results.port%% is not filled",
    ]


def test_a_plain_job_leaves_nothing_out() -> None:
    definition = {
        "version": "0.1",
        "type": "container",
        "ops": [{"type": "container/run", "id": "a", "args": {"image": "ubuntu", "cmd": "true"}}],
    }
    job = parse_job(definition)
    assert job_not_acted_on(job) == []
    assert op_not_acted_on(job.ops[0]) == []
