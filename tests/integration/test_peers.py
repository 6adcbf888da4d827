"""Each peer of the test bed proves it works as the real thing would, with the real clients."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

from tests.fakes.content import Content
from tests.fakes.hf_hub import FakeHub
from tests.peers.dockerd import DockerPeer
from tests.peers.registry import RegistryPeer
from tests.peers.s3 import S3Peer
from tests.peers.s3rver import S3rverPeer


def test_registry_holds_the_standard_images(
    registry: RegistryPeer, docker_peer: DockerPeer
) -> None:
    assert {"library/ubuntu", "library/busybox", "nosana/multi"} <= set(registry.catalog())


@pytest.mark.docker
def test_docker_pulls_hub_names_through_the_mirror_and_runs_them(docker_peer: DockerPeer) -> None:
    client = docker_peer.client()
    output = client.containers.run("ubuntu", ["ls", "/"], remove=True, network_mode="none")
    assert b"bin" in output.split()
    multi = client.images.pull("nosana/multi", tag="1.0")
    assert len(multi.attrs["RootFS"]["Layers"]) == 4
    client.images.remove("ubuntu", force=True)
    client.images.remove("nosana/multi:1.0", force=True)
    client.close()


def test_s3_lists_with_pagination_and_serves_ranges(s3: S3Peer) -> None:
    s3.bucket("peer-smoke", {f"k/{i:04}": b"x" * i for i in range(1005)})
    client = s3.client()
    pages = list(client.get_paginator("list_objects_v2").paginate(Bucket="peer-smoke", Prefix="k/"))
    assert len(pages) == 2
    assert sum(len(p["Contents"]) for p in pages) == 1005
    part = client.get_object(Bucket="peer-smoke", Key="k/0100", Range="bytes=10-19")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["Body"].read() == b"x" * 10


def test_s3rver_pages_with_max_keys_under_its_own_namespace_and_serves_ranges(
    s3rver: S3rverPeer,
) -> None:
    s3rver.bucket("peer-smoke", {f"k/{i:02}": b"x" * i for i in range(33)})
    client = s3rver.client()
    paginator = client.get_paginator("list_objects_v2")
    pages = list(
        paginator.paginate(Bucket="peer-smoke", Prefix="k/", PaginationConfig={"PageSize": 10})
    )
    assert [len(p["Contents"]) for p in pages] == [10, 10, 10, 3]
    with urllib.request.urlopen(f"{s3rver.url}/peer-smoke?list-type=2&prefix=k/") as response:
        assert b'xmlns="http://doc.s3.amazonaws.com/2006-03-01/"' in response.read()  # not AWS's
    part = client.get_object(Bucket="peer-smoke", Key="k/20", Range="bytes=5-14")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["Body"].read() == b"x" * 10


def test_hub_serves_snapshot_download_like_the_real_hub(hub: FakeHub, tmp_path: Path) -> None:
    weights = Content.generated(3 * 1024 * 1024 + 17, seed=1)
    files: dict[str, bytes | Content] = {
        "config.json": b'{"a": 1}',
        "nested/deeper/tokenizer.json": b"{}",
        "model.safetensors": weights,
    }
    commit = hub.commit("peer/smoke", files)
    local = snapshot_download("peer/smoke", endpoint=hub.url, cache_dir=tmp_path / "hf")
    assert Path(local).name == commit
    assert (Path(local) / "model.safetensors").read_bytes() == weights.read()
    assert (Path(local) / "nested/deeper/tokenizer.json").read_bytes() == b"{}"
    assert hub.cdn_traffic.count(f"GET /lfs/{weights.sha256}") == 1


def test_hub_answers_errors_the_way_huggingface_hub_understands(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.commit("peer/gated", {"w.bin": b"secret weights"}, gated=True)
    api = HfApi(endpoint=hub.url)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("peer/missing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("peer/gated", revision="nope")
    with pytest.raises(GatedRepoError):
        hf_hub_download("peer/gated", "w.bin", endpoint=hub.url, cache_dir=tmp_path)
    info = HfApi(endpoint=hub.url, token=hub.token).model_info("peer/gated", files_metadata=True)
    assert info.siblings is not None
    sibling = info.siblings[0]
    assert sibling.lfs is not None
    assert sibling.lfs.sha256 == Content.of(b"secret weights").sha256


def test_hub_tree_pages_and_content_host_ranges(hub: FakeHub) -> None:
    hub.commit("peer/wide", {f"dir/f{i:03}.txt": str(i).encode() for i in range(120)})
    tree = list(HfApi(endpoint=hub.url).list_repo_tree("peer/wide", recursive=True))
    assert len([t for t in tree if t.path.startswith("dir/f")]) == 120
    blob = Content.generated(1024 * 1024, seed=2)
    hub.commit("peer/ranged", {"w.bin": blob})
    request = urllib.request.Request(
        f"{hub.cdn_url}/lfs/{blob.sha256}", headers={"Range": "bytes=100-199"}
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 206
        assert response.read() == blob.read(100, 200)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(hub.file_url("peer/ranged", "missing.txt"))
    assert caught.value.headers["X-Error-Code"] == "EntryNotFound"
