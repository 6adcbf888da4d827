"""The required list in both shapes Nosana has served, and what a malformed one says."""

from __future__ import annotations

import json

import pytest

from daemon.errors import InvalidInput, UpstreamTooLarge
from daemon.market import parse_required
from daemon.resources import HFResource, S3Resource
from daemon.util.limits import MARKET_ITEMS

SEED = {
    "required_images": [
        "registry.hub.docker.com/nosana/frpc:0.1.0",
        "docker.io/vllm/vllm-openai:v0.5.4",
    ],
    "required_remote_resources": [
        {"type": "S3", "url": "https://models.nosana.io/stable-diffusion/dreamshaper/8"}
    ],
}


def test_the_seeds_shape() -> None:
    items = parse_required(json.dumps(SEED).encode())
    assert [(i.kind, i.name) for i in items][:2] == [
        ("image", "registry.hub.docker.com/nosana/frpc:0.1.0"),
        ("image", "docker.io/vllm/vllm-openai:v0.5.4"),
    ]
    assert isinstance(items[2].resource, S3Resource)


def test_the_newer_shape_with_image_objects_and_hf_urls() -> None:
    newer = {
        "required_images": [
            {
                "name": "ghcr.io/org/private:1",
                "server": "ghcr.io",
                "username": "u",
                "password": "p",
            },
            {"name": "docker.io/library/busybox:latest"},
        ],
        "required_remote_resources": [{"type": "HF", "url": "TinyLlama/TinyLlama-1.1B-Chat-v1.0"}],
    }
    images, public, model = parse_required(json.dumps(newer).encode())
    assert images.credentials is not None
    assert images.credentials.username == "u"
    assert public.credentials is None
    assert isinstance(model.resource, HFResource)
    assert model.resource.repo == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"<html>bad gateway</html>", "Invalid JSON"),
        (b'{"required_images": "ubuntu"}', "required_images"),
        (b'{"required_remote_resources": [{"type": "FTP"}]}', "required_remote_resources[0]"),
        (
            b'{"required_remote_resources": [{"type": "HF", "repo": "x/y", "colour": 1}]}',
            "required_remote_resources[0].colour",
        ),
    ],
)
def test_malformed_lists_are_errors_that_name_the_place(body: bytes, named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_required(body)
    assert named in str(caught.value) or any(named in e.loc for e in caught.value.errors)


def test_a_required_list_past_its_bound_is_refused_before_anything_is_pinned() -> None:
    body = {"required_images": [f"img{i}:1" for i in range(MARKET_ITEMS.limit + 1)]}
    body["required_remote_resources"] = []
    with pytest.raises(UpstreamTooLarge, match=r"market\.items"):
        parse_required(json.dumps(body).encode())
    body["required_images"].pop()
    assert len(parse_required(json.dumps(body).encode())) == MARKET_ITEMS.limit
