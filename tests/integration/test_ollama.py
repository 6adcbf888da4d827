"""Ollama models from the test bed's docker-registry, as registry.ollama.ai serves them."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from daemon.errors import UpstreamIntegrityError, UpstreamNotFound
from daemon.resources import OllamaResource, parse_resource
from tests.daemon_process import DaemonProcess
from tests.fakes.faults import Faults
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.integration.conftest import CacheFactory
from tests.peers.ollama import LICENSE, MODEL, PARAMS, TEMPLATE, PushedModel, push_model
from tests.peers.registry import RegistryPeer

MB = 1024 * 1024


def ollama(model: str) -> OllamaResource:
    resource = parse_resource({"type": "Ollama", "model": model})
    assert isinstance(resource, OllamaResource)
    return resource


def layers(weights: bytes, template: str = "{{ .Prompt }}") -> dict[str, bytes]:
    return {
        MODEL: weights,
        TEMPLATE: template.encode(),
        PARAMS: b'{"stop": ["</s>"]}',
        LICENSE: b"MIT License",
    }


def expected_tree(model: PushedModel, host: str, namespace: str, name: str) -> dict[str, bytes]:
    tree = {f"manifests/{host}/{namespace}/{name}/{model.tag}": model.manifest}
    tree |= {f"blobs/sha256-{digest}": data for digest, data in model.blobs.items()}
    return tree


def tree_of(view: Path) -> dict[str, bytes]:
    return {str(p.relative_to(view)): p.read_bytes() for p in view.rglob("*") if p.is_file()}


async def test_pull_by_name_tag_and_namespace_in_ollamas_own_layout(
    registry: RegistryPeer, make_cache: CacheFactory
) -> None:
    latest = push_model(registry.url, "library/tinyllama", "latest", layers(os.urandom(MB)))
    tagged = push_model(registry.url, "library/tinyllama", "1b", layers(os.urandom(MB // 2)))
    spaced = push_model(registry.url, "someone/coder", "7b-q4", layers(os.urandom(300_000)))
    async with make_cache(NOSANA_CACHE_OLLAMA__REGISTRY=registry.url) as cache:
        for model, resource, namespace, name in (
            (latest, "tinyllama", "library", "tinyllama"),
            (tagged, "tinyllama:1b", "library", "tinyllama"),
            (spaced, "someone/coder:7b-q4", "someone", "coder"),
        ):
            lease = await cache.acquire(ollama(resource), holder="t")
            assert lease.view is not None
            # Under the model's own registry, where the container's Ollama looks, not under
            # the host the bytes came from (a site's mirror of registry.ollama.ai, say).
            assert tree_of(lease.view) == expected_tree(
                model, "registry.ollama.ai", namespace, name
            )
            assert lease.entry.version == model.digest
            assert lease.entry.details["manifest_digest"] == model.digest


async def test_a_model_that_names_its_registry_is_laid_out_under_that_name(
    registry: RegistryPeer, make_cache: CacheFactory
) -> None:
    model = push_model(registry.url, "team/named", "v1", layers(os.urandom(200_000)))
    async with make_cache(NOSANA_CACHE_OLLAMA__REGISTRY=registry.url) as cache:
        lease = await cache.acquire(ollama(f"{registry.host}/team/named:v1"), holder="t")
        assert lease.view is not None
        assert tree_of(lease.view) == expected_tree(model, registry.host, "team", "named")


async def test_two_tags_sharing_weights_store_them_once(
    registry: RegistryPeer, make_cache: CacheFactory
) -> None:
    weights = os.urandom(2 * MB)
    push_model(registry.url, "library/shared", "chat", layers(weights, "chat: {{ .Prompt }}"))
    push_model(registry.url, "library/shared", "instruct", layers(weights, "do: {{ .Prompt }}"))
    async with make_cache(NOSANA_CACHE_OLLAMA__REGISTRY=registry.url) as cache:
        chat = await cache.acquire(ollama("shared:chat"), holder="t")
        instruct = await cache.acquire(ollama("shared:instruct"), holder="t")
        assert chat.entry.id != instruct.entry.id
        sizes = sorted(p.stat().st_size for p in cache.store.paths.blobs.glob("*/*"))
    assert sizes.count(2 * MB) == 1


async def test_a_retagged_model_is_a_new_entry(
    registry: RegistryPeer, make_cache: CacheFactory
) -> None:
    first = push_model(registry.url, "library/moving", "latest", layers(os.urandom(1000)))
    async with make_cache(
        NOSANA_CACHE_OLLAMA__REGISTRY=registry.url, NOSANA_CACHE_STORE__TTL="1s"
    ) as cache:
        one = await cache.acquire(ollama("moving"), holder="t")
        await cache.store.release(one)
        second = push_model(registry.url, "library/moving", "latest", layers(os.urandom(1000)))
        await asyncio.sleep(1.1)
        two = await cache.acquire(ollama("moving"), holder="t")
    assert (one.entry.version, two.entry.version) == (first.digest, second.digest)
    assert one.entry.id != two.entry.id


async def test_unknown_models_and_tags_are_named(
    registry: RegistryPeer, make_cache: CacheFactory
) -> None:
    push_model(registry.url, "library/known", "latest", layers(b"w"))
    async with make_cache(NOSANA_CACHE_OLLAMA__REGISTRY=registry.url) as cache:
        with pytest.raises(UpstreamNotFound, match=r"ollama://nope:latest: no such model or tag"):
            await cache.acquire(ollama("nope"), holder="t")
        with pytest.raises(UpstreamNotFound, match=r"ollama://known:v9: no such model or tag"):
            await cache.acquire(ollama("known:v9"), holder="t")


async def test_a_blob_whose_bytes_do_not_match_its_digest_is_refused(
    registry: RegistryPeer, make_cache: CacheFactory
) -> None:
    weights = os.urandom(100_000)
    model = push_model(registry.url, "library/rotten", "latest", layers(weights))
    digest = next(d for d, data in model.blobs.items() if data == weights)
    stored = registry.root / "data/docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"
    stored.write_bytes(os.urandom(100_000))  # the registry's disk rots under it
    async with make_cache(NOSANA_CACHE_OLLAMA__REGISTRY=registry.url) as cache:
        with pytest.raises(UpstreamIntegrityError, match=f"expected {digest}"):
            await cache.acquire(ollama("rotten"), holder="t")
        assert not cache.store.paths.blob(digest).exists()


def test_a_killed_download_resumes(
    tmp_path: Path, registry: RegistryPeer, servers: ThreadedServers
) -> None:
    """Every request for the big blob is held after 8 MiB of its body (held, not stalled for a
    while: a part split off a slow one at the download's tail would fetch the rest meanwhile),
    the daemon is killed, and its successor asks only for what is missing."""
    weights = os.urandom(40 * MB)
    model = push_model(registry.url, "library/big", "latest", layers(weights))
    digest = next(d for d, data in model.blobs.items() if data == weights)
    proxy = FaultyProxy(servers, registry.url)
    held = threading.Event()
    proxy.faults[digest] = Faults(hold_after=8 * MB, hold=held)
    config: dict[str, dict[str, object]] = {
        "ollama": {"registry": proxy.url},
        "download": {"part_size": "64MiB"},
    }
    daemon = DaemonProcess(tmp_path, config).start()
    entry = daemon.client().request(
        "POST", "/v1/resources", body={"type": "Ollama", "model": "big"}
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        progress = daemon.client().get(f"/v1/resources/{entry['id']}")["progress"]
        if progress["bytes_done"] >= 8 * MB:
            break
        time.sleep(0.1)
    time.sleep(2.5)  # progress of a resumable download is recorded every 2 s
    daemon.stop(signal.SIGKILL)
    proxy.faults.clear()
    held.set()
    seen = len(proxy.traffic.ranges)
    again = DaemonProcess(tmp_path, config, port=daemon.port).start()
    try:
        deadline = time.monotonic() + 60
        while (state := again.client().get(f"/v1/resources/{entry['id']}"))["state"] != "ready":
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        view = Path(state["path"])
        assert (view / f"blobs/sha256-{digest}").read_bytes() == weights
        resumed = [r for path, r in proxy.traffic.ranges[seen:] if digest in path]
        spans = [tuple(map(int, r.removeprefix("bytes=").split("-"))) for r in resumed]
        assert spans, proxy.traffic.ranges
        # Nothing is asked again from the start, and at least the 8 MiB seen before the kill
        # is kept: they may be spread over parts (the tail is split off a held part), and each
        # part may lose the few kilobytes it had not yet written out when it was killed.
        assert min(start for start, _ in spans) > 0, resumed
        asked = sum(end + 1 - start for start, end in spans)
        assert asked <= len(weights) - 8 * MB + len(spans) * 512 * 1024, resumed
    finally:
        again.stop()
