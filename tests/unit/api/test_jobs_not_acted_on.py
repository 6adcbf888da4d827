"""A submitted job's record says what its definition asks that the daemon does not do."""

from __future__ import annotations

from tests.unit.api.conftest import Api


async def test_a_submitted_jobs_record_says_what_is_not_acted_on(api: Api) -> None:
    definition = {
        "version": "0.1",
        "type": "container",
        "deployment_id": "d1",
        "ops": [
            {
                "type": "container/run",
                "id": "a",
                "args": {"image": "ubuntu", "env": {"JOB": "%%global.job%%"}},
            }
        ],
    }
    # ?wait=true: the job ends (there is no Docker engine here) before the daemon is closed.
    answer = await api.client.post("/v1/jobs?wait=true", json=definition)
    assert answer.status == 201
    submitted = await answer.json()
    assert submitted["not_acted_on"] == ["deployment_id: Nosana's load-balanced service URLs"]
    assert submitted["ops"][0]["not_acted_on"] == ["args.env.JOB: %%global.job%% is not filled"]
    shown = await (await api.client.get(f"/v1/jobs/{submitted['id']}")).json()
    assert shown["ops"][0]["not_acted_on"] == submitted["ops"][0]["not_acted_on"]
