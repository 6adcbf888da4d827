"""The job networks on a real engine: the shared one is made once, however many one-container
jobs ask for it at the same moment, from one daemon or from two sharing the engine.

Found by the herd benchmark (50 jobs submitted at once on a fresh daemon): the jobs raced to
create `nosana-cache-jobs`, and the engine refused the losers' second network on the same
bridge name, which failed 4 of the 50 jobs.
"""

from __future__ import annotations

import asyncio
import contextlib

import docker.errors
import pytest

from daemon.engine.client import Engine
from daemon.engine.networks import BRIDGE_NAME, SHARED_NETWORK, Networks
from daemon.fence import BRIDGE_PREFIX
from daemon.settings.schema import DockerSettings
from tests.peers.dockerd import DockerPeer

pytestmark = pytest.mark.docker


async def test_a_herd_of_jobs_from_two_daemons_makes_the_shared_network_once(
    second_docker_peer: DockerPeer,
) -> None:
    client = second_docker_peer.client()
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_network(SHARED_NETWORK)
    engines = [Engine(DockerSettings(host=second_docker_peer.host)) for _ in range(2)]
    try:
        daemons = [Networks(engine, owner=f"daemon-{i}") for i, engine in enumerate(engines)]
        asks = [daemon.shared() for daemon in daemons for _ in range(12)]
        assert await asyncio.gather(*asks) == [SHARED_NETWORK] * len(asks)
    finally:
        for engine in engines:
            await engine.close()
    made = client.api.networks(names=[SHARED_NETWORK])
    client.close()
    assert [n["Name"] for n in made] == [SHARED_NETWORK]
    assert made[0]["Options"][BRIDGE_NAME].startswith(BRIDGE_PREFIX)
