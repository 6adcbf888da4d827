"""Which way the engine pulls an image: the registry endpoint, a mirror, or direct."""

from __future__ import annotations

import pytest

from daemon.engine.pull_routes import Credentials, ImageRef, PullRoutes
from daemon.settings import DockerSettings

ENDPOINT = "127.0.0.1:9812"
ALICE = Credentials("alice", "s3cret", "ghcr.io")


def routes(mirrors: dict[str, str] | None = None, *, share_private: bool = False) -> PullRoutes:
    settings = DockerSettings(host="unix:///x", registry_mirrors=mirrors or {})
    return PullRoutes(settings, lambda: ENDPOINT, mirror_private=share_private)


@pytest.mark.parametrize(
    ("ref", "source"),
    [
        ("ubuntu", f"{ENDPOINT}/library/ubuntu:latest"),
        ("vllm/vllm-openai:v0.6", f"{ENDPOINT}/vllm/vllm-openai:v0.6"),
        ("registry.hub.docker.com/acc/x:1", f"{ENDPOINT}/acc/x:1"),
        ("ghcr.io/org/tool:1.0", f"{ENDPOINT}/ghcr.io/org/tool:1.0"),
        ("10.0.0.5:5000/team/app:2", f"{ENDPOINT}/10.0.0.5__5000/team/app:2"),
        ("localhost:5000/a:1", f"{ENDPOINT}/localhost__5000/a:1"),
    ],
)
def test_tags_go_through_the_endpoint_by_a_name_docker_can_pull(ref: str, source: str) -> None:
    route = routes().choose(ImageRef.parse(ref), None, [])
    assert (route.via, route.source, route.auth) == ("endpoint", source, None)


def test_credentials_go_to_the_endpoint_for_its_own_address() -> None:
    route = routes().choose(ImageRef.parse("ghcr.io/org/private:1"), ALICE, [])
    assert route.via == "endpoint"
    assert route.auth == {"username": "alice", "password": "s3cret", "serveraddress": ENDPOINT}


def test_a_digest_keeps_the_old_route_the_engine_names_it_only_as_pulled() -> None:
    digest = "sha256:" + "a" * 64
    image = ImageRef.parse(f"ghcr.io/org/tool@{digest}")
    assert routes().choose(image, None, []).source == f"ghcr.io/org/tool@{digest}"
    assert routes({"ghcr.io": "m:5000"}).choose(image, None, []).via == "mirror"


@pytest.mark.parametrize(("share", "mirror"), [(False, None), (True, "m:5000")])
def test_a_private_pull_uses_no_mirror_unless_the_site_shares_private_data(
    share: bool, mirror: str | None
) -> None:
    """Through the endpoint either way: its fetches follow the same rule (`mirror_for`)."""
    chosen = routes({"ghcr.io": "m:5000"}, share_private=share)
    image = ImageRef.parse("ghcr.io/org/p:1")
    assert chosen.choose(image, ALICE, []).via == "endpoint"
    assert chosen.mirror_for(image, ALICE) == mirror
    assert chosen.mirror_for(image, None) == "m:5000"
    off = PullRoutes(
        DockerSettings(host="unix:///x", registry_mirrors={"ghcr.io": "m:5000"}),
        lambda: None,
        mirror_private=share,
    )
    assert off.choose(image, ALICE, []).via == ("mirror" if share else "direct")


def test_docker_hub_names_stay_with_the_engines_own_mirrors_unless_the_daemon_names_one() -> None:
    hub = ImageRef.parse("ubuntu")
    theirs = ["https://mirror.gcr.io/"]
    assert routes().choose(hub, None, theirs).source == "ubuntu:latest"
    assert routes().choose(hub, None, [f"http://{ENDPOINT}/"]).via == "endpoint"  # itself
    assert routes({"docker.io": "site:5000"}).choose(hub, None, theirs).via == "endpoint"
    assert routes().choose(ImageRef.parse("ghcr.io/o/t:1"), None, theirs).via == "endpoint"


def test_an_endpoint_the_engine_cannot_reach_is_given_up_for_good() -> None:
    chosen = routes({"docker.io": "site:5000"})
    image = ImageRef.parse("ubuntu")
    route = chosen.choose(image, None, [])
    assert not chosen.unreachable(route, "manifest unknown")
    said = f'Get "http://{ENDPOINT}/v2/": dial tcp {ENDPOINT}: connect: connection refused'
    assert chosen.unreachable(route, said)
    assert chosen.choose(image, None, []).source == "site:5000/library/ubuntu:latest"


def test_an_ipv6_registry_or_the_endpoint_down_keeps_the_old_route() -> None:
    assert routes().choose(ImageRef.parse("[::1]:5000/a/b:1"), None, []).via == "direct"
    off = PullRoutes(DockerSettings(host="unix:///x"), lambda: None, mirror_private=False)
    assert off.choose(ImageRef.parse("ubuntu"), None, []).via == "direct"
