"""What job containers get to reach the Hub endpoint, and when a job's own variables go around
it."""

from __future__ import annotations

import pytest

from daemon.jobs.hub_env import bypass_reason, hub_variables


def test_containers_get_the_endpoint_xet_off_and_llama_cpps_endpoint_with_its_slash() -> None:
    assert hub_variables("http://nosana-cache.internal:9811/hf") == {
        "HF_ENDPOINT": "http://nosana-cache.internal:9811/hf",
        "HF_HUB_DISABLE_XET": "1",
        "MODEL_ENDPOINT": "http://nosana-cache.internal:9811/hf/",
    }


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HF_ENDPOINT": "http://x"}, "HF_ENDPOINT"),
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE"),
        ({"TRANSFORMERS_OFFLINE": "yes"}, "TRANSFORMERS_OFFLINE"),
        ({"VLLM_USE_MODELSCOPE": "True"}, "VLLM_USE_MODELSCOPE"),
        ({"MODEL_ENDPOINT": "http://x/"}, "MODEL_ENDPOINT"),
        ({"HF_ENDPOINT": "http://x", "HF_HUB_OFFLINE": "1"}, "HF_ENDPOINT"),
    ],
)
def test_a_jobs_own_variables_that_go_around_the_cache_are_named(
    env: dict[str, str], named: str
) -> None:
    reason = bypass_reason(env)
    assert reason is not None
    assert reason.startswith(f"the job sets {named}")


@pytest.mark.parametrize(
    "env",
    [{}, {"HF_HUB_OFFLINE": "0"}, {"VLLM_USE_MODELSCOPE": "false"}, {"HF_HUB_DISABLE_XET": "1"}],
)
def test_variables_that_keep_the_cache_say_nothing(env: dict[str, str]) -> None:
    assert bypass_reason(env) is None
