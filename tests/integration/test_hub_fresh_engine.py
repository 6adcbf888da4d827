"""Issue 24: on a host being set up, the Docker engine (Debian's 20.10) makes `docker0` at its
first start and then records no `Gateway` for its default bridge; the containers' listener,
bound where that field said, was never bound, and every job ran without `HF_ENDPOINT`.

The test bed's engines share a `docker0` that an earlier engine made, which hides this, so the
case runs where no `docker0` can exist yet: a fresh network and mount namespace (as root, only
`lo` up; the engine's mounts go with it). A private engine on an empty data root, the fake hub
and the daemon all run in there; the cases are `hub_fresh_engine_cases.py`, run by pytest
inside.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers.netns import pytest_in_namespace

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]


def test_a_fresh_engines_job_containers_get_hf_endpoint_inside_a_network_namespace() -> None:
    cases = ROOT / "tests/integration/hub_fresh_engine_cases.py"
    result = pytest_in_namespace(cases, "", {"FRESH_ENGINE_NAMESPACE": "1"}, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout, result.stdout
    assert "skipped" not in result.stdout, result.stdout
