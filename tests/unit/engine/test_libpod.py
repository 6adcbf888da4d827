"""Podman's own pull for the registry endpoint's names: the engine told apart, the request,
and libpod's report read as Docker's progress."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

from daemon.engine.libpod import auth_header, docker_event, libpod_api, pull_target

PODMAN_VERSION = {
    "Platform": {"Name": "linux/amd64/debian-12"},
    "Components": [
        {
            "Name": "Podman Engine",
            "Version": "4.3.1",
            "Details": {"APIVersion": "4.3.1", "MinAPIVersion": "4.0.0"},
        }
    ],
    "Version": "4.3.1",
    "ApiVersion": "1.41",
}
DOCKER_VERSION = {
    "Components": [{"Name": "Engine", "Version": "20.10.24", "Details": {"ApiVersion": "1.41"}}],
    "Version": "20.10.24",
    "ApiVersion": "1.41",
}


def test_podman_is_told_from_docker_by_its_version_components() -> None:
    assert libpod_api(PODMAN_VERSION) == "4.3.1"
    assert libpod_api(DOCKER_VERSION) is None
    assert libpod_api({}) is None
    bare = {"Components": [{"Name": "Podman Engine", "Version": "v4.9.0"}]}
    assert libpod_api(bare) == "4.9.0"  # no Details: the engine's version


def test_the_pull_skips_tls_for_the_reference_it_names_alone() -> None:
    target = urlsplit(pull_target("4.3.1", "127.0.0.1:9812/library/ubuntu:latest"))
    assert target.path == "/v4.3.1/libpod/images/pull"
    query = parse_qs(target.query)
    assert query["reference"] == ["127.0.0.1:9812/library/ubuntu:latest"]
    assert query["tlsVerify"] == ["false"]
    platform = parse_qs(urlsplit(pull_target("4.3.1", "a:1/b:c", "linux/arm64/v8")).query)
    assert (platform["os"], platform["arch"], platform["variant"]) == (["linux"], ["arm64"], ["v8"])


def test_credentials_go_as_one_auth_config() -> None:
    auth = {"username": "alice", "password": "s3cret", "serveraddress": "127.0.0.1:9812"}
    assert json.loads(base64.urlsafe_b64decode(auth_header(auth))) == auth


def test_libpods_report_reads_as_dockers_progress() -> None:
    ref = "127.0.0.1:9812/library/ubuntu:latest"
    assert docker_event({"stream": "Copying blob sha256:ab\n"}, ref) == {
        "status": "Copying blob sha256:ab"
    }
    failed = docker_event({"error": "initializing source: 503"}, ref)
    assert failed == {
        "errorDetail": {"message": "initializing source: 503"},
        "error": "initializing source: 503",
    }
    done = docker_event({"images": ["f00d"], "id": "f00d", "stream": ""}, ref)
    assert done == {"status": f"Status: Downloaded newer image for {ref}", "id": "f00d"}
