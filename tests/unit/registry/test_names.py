"""Which registry and repository a request of each engine means."""

from __future__ import annotations

import pytest

from daemon.registry.names import BadRequest, digest, reference, repository
from daemon.sources.registry import Repository


@pytest.mark.parametrize(
    ("name", "ns", "expected"),
    [
        ("library/ubuntu", None, Repository("docker.io", "library/ubuntu")),  # dockerd
        ("ubuntu", None, Repository("docker.io", "library/ubuntu")),
        ("org/tool", "ghcr.io", Repository("ghcr.io", "org/tool")),  # containerd's ns
        ("library/ubuntu", "docker.io", Repository("docker.io", "library/ubuntu")),
        ("ghcr.io/org/tool", None, Repository("ghcr.io", "org/tool")),  # podman's path
        ("docker.io/library/ubuntu", None, Repository("docker.io", "library/ubuntu")),
        ("registry.hub.docker.com/acc/x", None, Repository("docker.io", "acc/x")),
        ("127.0.0.1:5000/a/b", None, Repository("127.0.0.1:5000", "a/b")),
        ("127.0.0.1__5000/a/b", None, Repository("127.0.0.1:5000", "a/b")),  # the daemon's
        ("localhost__5000/a", None, Repository("localhost:5000", "a")),
        ("acc__1/x", None, Repository("docker.io", "acc__1/x")),  # not a host: Docker Hub
        ("localhost/a", None, Repository("localhost", "a")),
        ("acc/my-tool.v2", None, Repository("docker.io", "acc/my-tool.v2")),
    ],
)
def test_each_engines_request_names_its_upstream(
    name: str, ns: str | None, expected: Repository
) -> None:
    assert repository(name, ns) == expected


@pytest.mark.parametrize(
    ("name", "ns"),
    [("Upper/case", None), ("a//b", None), ("../x", None), ("a/b", "bad host!"), ("a" * 300, None)],
)
def test_bad_names_are_name_invalid(name: str, ns: str | None) -> None:
    with pytest.raises(BadRequest) as caught:
        repository(name, ns)
    assert caught.value.code == "NAME_INVALID"


def test_references_are_tags_or_sha256_digests() -> None:
    good = "sha256:" + "a" * 64
    assert reference("1.0") == "1.0"
    assert reference(good) == good
    assert digest(good) == good
    for bad, code in (("sha256:abc", "DIGEST_INVALID"), ("-x", "TAG_INVALID")):
        with pytest.raises(BadRequest) as caught:
            reference(bad)
        assert caught.value.code == code
