"""A market's required list through the real daemon: pre-pull, pin, refresh, readiness."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.cli.client import ApiError
from tests.daemon_process import DaemonProcess
from tests.fakes.market import FakeMarket
from tests.fakes.server import ThreadedServers
from tests.peers.dockerd import DockerPeer
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer

pytestmark = pytest.mark.docker

MARKET = "97G9NnvBDQ2WpKu6fasoMsAKmfj63C9rhysJnkeWodAf"


@pytest.fixture
def market(servers: ThreadedServers) -> FakeMarket:
    return FakeMarket(servers)


def seed_shape(s3: S3Peer, *, extra_images: list[Any] | None = None) -> dict[str, Any]:
    """The seed's JSON, with images and a model the test bed can serve."""
    return {
        "required_images": [
            "registry.hub.docker.com/nosana/multi:1.0",  # through docker.registry_mirrors
            "docker.io/library/busybox:latest",  # through the engine's mirror
            *(extra_images or []),
        ],
        "required_remote_resources": [
            {"type": "S3", "url": f"{s3.url}/market-models/stable-diffusion/dreamshaper/8"}
        ],
    }


def market_daemon(
    tmp_path: Path,
    market: FakeMarket,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    **store: Any,
) -> DaemonProcess:
    config: dict[str, dict[str, Any]] = {
        "market": {
            "address": MARKET,
            "required_resources_url": market.template,
            "refresh_interval": "2s",
        },
        "docker": {
            "host": docker_peer.host,
            "registry_mirrors": {"registry.hub.docker.com": registry.host},
        },
        "security": {"allow_private_urls": True},
        "store": store,
    }
    return DaemonProcess(tmp_path, config)


def ready(daemon: DaemonProcess) -> tuple[int, dict[str, Any]]:
    try:
        return 200, daemon.client().get("/readyz")
    except ApiError as exc:
        return exc.status, exc.problem


def until(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_start_up_pulls_and_pins_everything_and_readyz_turns_200(
    tmp_path: Path, market: FakeMarket, docker_peer: DockerPeer, registry: RegistryPeer, s3: S3Peer
) -> None:
    s3.bucket(
        "market-models",
        {
            "stable-diffusion/dreamshaper/8/model.safetensors": b"w" * 100_000,
            "stable-diffusion/dreamshaper/8/vae/config.json": b"{}",
        },
        public=True,
    )
    market.serve(seed_shape(s3))
    market.delay = 1.0  # the API must answer while the list is still being fetched
    daemon = market_daemon(tmp_path, market, docker_peer, registry).start()
    try:
        status, body = ready(daemon)
        assert status == 503
        assert body["missing"]
        market.delay = 0
        until(lambda: ready(daemon)[0] == 200)
        state = daemon.client().get("/v1/market")
        assert state["address"] == MARKET
        assert state["ready"] is True
        assert {item["kind"] for item in state["items"]} == {"image", "resource"}
        assert all(item["state"] == "ready" and item["pinned"] for item in state["items"])
        pinned = [e for e in daemon.client().get("/v1/resources")["resources"] if e["pinned"]]
        assert len(pinned) == 3
        assert all(e["pinned_by"] == ["market"] for e in pinned)
        images = {tag for i in docker_peer.client().images.list() for tag in i.tags}
        assert "registry.hub.docker.com/nosana/multi:1.0" in images
        assert not any(tag.startswith(registry.host) for tag in images)  # the mirror's tag went
        summary = daemon.cli("status")
        assert f"market   {MARKET}: 3 required, ready" in summary.stdout
    finally:
        daemon.stop()


def test_refresh_adds_and_drops_items_and_dropped_ones_age_out(
    tmp_path: Path, market: FakeMarket, docker_peer: DockerPeer, registry: RegistryPeer, s3: S3Peer
) -> None:
    s3.bucket(
        "market-models", {"stable-diffusion/dreamshaper/8/model.safetensors": b"m"}, public=True
    )
    market.serve(seed_shape(s3))
    daemon = market_daemon(
        tmp_path, market, docker_peer, registry, ttl="4s", sweep_interval="1s"
    ).start()
    try:
        until(lambda: ready(daemon)[0] == 200)
        time.sleep(5)  # past the ttl: pinned entries stay
        assert (
            len([e for e in daemon.client().get("/v1/resources")["resources"] if e["pinned"]]) == 3
        )
        before = {e["source"]: e["id"] for e in daemon.client().get("/v1/resources")["resources"]}
        changed = seed_shape(s3)
        changed["required_images"] = ["docker.io/library/ubuntu:latest"]
        market.serve(changed)

        def switched() -> bool:
            items = daemon.client().get("/v1/market")["items"]
            return {i["name"] for i in items if i["kind"] == "image"} == {
                "docker.io/library/ubuntu:latest"
            } and all(i["state"] == "ready" for i in items)

        until(switched)
        dropped = before["docker://docker.io/nosana/multi:1.0"]
        until(
            lambda: (
                dropped not in {e["id"] for e in daemon.client().get("/v1/resources")["resources"]}
            ),
            30,
        )
        remaining = daemon.client().get("/v1/resources")["resources"]
        assert {e["source"] for e in remaining if e["pinned"]} == {
            "docker://docker.io/library/ubuntu:latest",
            "s3://market-models/stable-diffusion/dreamshaper/8",
        }
    finally:
        daemon.stop()


def test_a_market_down_or_talking_garbage_changes_nothing_and_a_restart_uses_the_kept_list(
    tmp_path: Path, market: FakeMarket, docker_peer: DockerPeer, registry: RegistryPeer, s3: S3Peer
) -> None:
    market.status = 503
    daemon = market_daemon(tmp_path, market, docker_peer, registry).start()
    try:
        until(lambda: daemon.client().get("/v1/market")["last_error"] is not None)
        status, body = ready(daemon)
        assert status == 503
        assert body["missing"][0]["kind"] == "market"
        s3.bucket(
            "market-models", {"stable-diffusion/dreamshaper/8/model.safetensors": b"m"}, public=True
        )
        market.serve(seed_shape(s3))  # back up: the retry with backoff picks it up
        until(lambda: ready(daemon)[0] == 200)
        market.body = b"<html>bad gateway</html>"
        attempts = market.traffic.total()
        until(lambda: market.traffic.total() > attempts + 1)
        state = daemon.client().get("/v1/market")
        assert state["last_error"].startswith("malformed required list")
        assert ready(daemon)[0] == 200  # nothing was unpinned
        assert (
            len([e for e in daemon.client().get("/v1/resources")["resources"] if e["pinned"]]) == 3
        )
    finally:
        daemon.stop()
    market.status = 503
    again = market_daemon(tmp_path, market, docker_peer, registry)
    again.start()
    try:
        until(lambda: ready(again)[0] == 200, 30)  # the kept list, everything still pinned
        assert again.client().get("/v1/market")["last_fetch_at"] is not None
    finally:
        again.stop()
