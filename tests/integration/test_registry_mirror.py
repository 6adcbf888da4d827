"""Images across a site: config/registry-pull-through.yml, run as shipped, in front of an
upstream registry that counts what it serves, set as both nodes' `docker.registry_mirrors`;
each node has its own Docker engine, so node B's pull cannot be served by node A's engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from daemon.resources import OllamaResource, parse_resource
from tests.daemon_process import DaemonProcess
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.integration.conftest import CacheFactory
from tests.peers.dockerd import DockerPeer
from tests.peers.ollama import LICENSE, MODEL, PARAMS, TEMPLATE, push_model
from tests.peers.procs import wait_until
from tests.peers.registry import PULL_THROUGH_EXAMPLE, RegistryPeer

MB = 1024 * 1024
IMAGE_PATH = "nosana/multi:1.0"  # four layers, published to the test registry


def blob_gets(upstream: FaultyProxy) -> int:
    return sum(
        n
        for key, n in upstream.traffic.requests.items()
        if key.startswith("GET ") and "/blobs/" in key
    )


def job(image: str) -> dict[str, Any]:
    return {
        "version": "0.1",
        "type": "container",
        "ops": [
            {
                "type": "container/run",
                "id": "layers",
                "args": {"image": image, "cmd": "cat /opt/layer2.txt"},
            }
        ],
    }


@pytest.mark.docker
def test_a_second_nodes_pull_takes_no_layer_from_upstream(
    tmp_path: Path,
    servers: ThreadedServers,
    registry: RegistryPeer,
    docker_peer: DockerPeer,
    second_docker_peer: DockerPeer,
) -> None:
    for peer in (docker_peer, second_docker_peer):
        peer.forget_images()  # else a layer one engine already has is never asked for
    upstream = FaultyProxy(servers, registry.url)  # the remote registry, counted
    upstream_host = upstream.url.removeprefix("http://")
    mirror = RegistryPeer(
        tmp_path / "pull-through", proxy_of=upstream.url, example=PULL_THROUGH_EXAMPLE
    ).start()
    image = f"{upstream_host}/{IMAGE_PATH}"
    nodes = []
    try:
        for name, engine in (("a", docker_peer), ("b", second_docker_peer)):
            config = {
                "docker": {
                    "host": engine.host,
                    "gpu": "none",
                    "registry_mirrors": {upstream_host: mirror.host},
                }
            }
            nodes.append(DaemonProcess(tmp_path / name, config).start())
        a, b = nodes
        first = a.wait_job(a.client().request("POST", "/v1/jobs", body=job(image))["id"])
        assert first["state"] == "completed", first
        assert first["ops"][0]["image"]["pulled"] is True
        assert blob_gets(upstream) >= 5  # four layers and the config, through the mirror
        wait_until(lambda: mirror.stored_all(upstream.traffic.requests), 60, "the mirror's store")
        blobs, requests = blob_gets(upstream), dict(upstream.traffic.requests)

        second = b.wait_job(b.client().request("POST", "/v1/jobs", body=job(image))["id"])
        assert second["state"] == "completed", second
        assert second["ops"][0]["image"]["pulled"] is True  # pulled by node B's engine...
        assert (
            b.job_logs(second["id"]) == a.job_logs(first["id"]) == "layer 2 of nosana/multi\n" * 3
        )
        assert blob_gets(upstream) == blobs  # ...and not one blob from upstream
        asked = {k: n - requests.get(k, 0) for k, n in upstream.traffic.requests.items()}
        asked = {k: n for k, n in asked.items() if n}
        # What the pull-through registry still asks upstream: the tag, as Distribution does.
        assert all("/manifests/" in k or k == "GET /v2/" for k in asked), asked
    finally:
        for process in nodes:
            assert process.stop() == 0
        mirror.stop()
    for peer in (docker_peer, second_docker_peer):  # the session's engines, as they were
        engine = peer.client()
        try:
            engine.images.remove(image, force=True)
        finally:
            engine.close()


async def test_ollama_through_a_pull_through_registry_keeps_the_models_own_name(
    tmp_path: Path, servers: ThreadedServers, registry: RegistryPeer, make_cache: CacheFactory
) -> None:
    """`ollama.registry` naming the site's mirror of the model registry: the view is laid out
    under registry.ollama.ai, and a second node's pull takes no blob from upstream."""
    model = push_model(
        registry.url,
        "library/mirrored",
        "latest",
        {MODEL: os.urandom(MB), TEMPLATE: b"t", PARAMS: b"{}", LICENSE: b"MIT"},
    )
    upstream = FaultyProxy(servers, registry.url)
    mirror = RegistryPeer(
        tmp_path / "pull-through", proxy_of=upstream.url, example=PULL_THROUGH_EXAMPLE
    ).start()
    resource = parse_resource({"type": "Ollama", "model": "mirrored"})
    assert isinstance(resource, OllamaResource)
    path = "manifests/registry.ollama.ai/library/mirrored/latest"
    try:
        for node in ("a", "b"):
            async with make_cache(
                NOSANA_CACHE_OLLAMA__REGISTRY=mirror.url,
                NOSANA_CACHE_STORE__PATH=str(tmp_path / node),
            ) as cache:
                lease = await cache.acquire(resource, holder="t")
                assert lease.view is not None
                assert (lease.view / path).read_bytes() == model.manifest
            if node == "a":
                blobs = blob_gets(upstream)
                assert blobs >= len(model.blobs)  # every blob went through the mirror
        assert blob_gets(upstream) == blobs
    finally:
        mirror.stop()
