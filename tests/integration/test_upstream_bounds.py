"""Every listing and manifest from beyond this host is held to its bound, said before the work
it would cost (issue 25): a Hub tree of more files than `entry.files` or of endless empty pages,
an answer whose length is past `hub.answer_bytes`, an S3 listing that never ends, an Ollama
manifest of too many layers or bytes. Each is refused with the bound's name, the next page never
asked for."""

from __future__ import annotations

import pytest

from daemon.errors import UpstreamTooLarge
from daemon.resources import parse_resource
from daemon.sources.hub_listing import RepoRef
from daemon.util.limits import ENTRY_FILES, HUB_PAGES, S3_PAGES
from tests.fakes.hostile import PAGE, HostileUpstream
from tests.fakes.server import ThreadedServers
from tests.integration.conftest import CacheFactory


@pytest.fixture
def hostile(servers: ThreadedServers) -> HostileUpstream:
    return HostileUpstream(servers)


def _env(hostile: HostileUpstream) -> dict[str, str]:
    return {
        "HF_ENDPOINT": hostile.url,
        "NOSANA_CACHE_OLLAMA__REGISTRY": hostile.url,
        "NOSANA_CACHE_SECURITY__ALLOW_PRIVATE_URLS": "true",
        "NOSANA_CACHE_DOWNLOAD__MAX_RETRIES": "0",
    }


async def test_an_hf_repo_of_more_files_than_the_bound_is_refused_at_its_last_page(
    hostile: HostileUpstream, make_cache: CacheFactory
) -> None:
    async with make_cache(**_env(hostile)) as cache:
        resource = parse_resource({"type": "HF", "repo": "hostile/many-files"})
        with pytest.raises(UpstreamTooLarge, match=r"entry\.files"):
            await cache.acquire(resource, holder="t")
    assert hostile.asked["tree many-files"] == ENTRY_FILES.limit // PAGE + 1


async def test_the_hub_endpoints_listing_is_bound_in_files_pages_and_bytes(
    hostile: HostileUpstream, make_cache: CacheFactory
) -> None:
    async with make_cache(**_env(hostile)) as cache:
        hub = cache.sources.hub
        for name, bound in (
            ("many-files", "entry.files"),
            ("endless", "hub.pages"),
            ("huge-info", "hub.answer_bytes"),
        ):
            resolver = hub.revision(RepoRef("model", f"hostile/{name}"), "main", None).resolver
            with pytest.raises(UpstreamTooLarge, match=bound.replace(".", r"\.")):
                await resolver.resolve()
    assert hostile.asked["tree many-files"] == ENTRY_FILES.limit // PAGE + 1
    assert hostile.asked["tree endless"] == HUB_PAGES.limit
    assert hostile.asked["revision huge-info"] == 1  # refused, not retried
    assert hostile.asked["tree huge-info"] == 0


@pytest.mark.parametrize(
    ("bucket", "bound"), [("many-keys", "entry.files"), ("endless", "s3.pages")]
)
async def test_an_s3_listing_that_never_ends_is_refused_at_its_bound(
    bucket: str, bound: str, hostile: HostileUpstream, make_cache: CacheFactory
) -> None:
    async with make_cache(**_env(hostile)) as cache:
        resource = parse_resource({"type": "S3", "url": f"{hostile.url}/{bucket}/p"})
        with pytest.raises(UpstreamTooLarge, match=bound.replace(".", r"\.")):
            await cache.acquire(resource, holder="t")
    pages = ENTRY_FILES.limit // PAGE + 1 if bucket == "many-keys" else S3_PAGES.limit
    assert hostile.asked[f"listing {bucket}"] == pages


@pytest.mark.parametrize(
    ("model", "bound"), [("many-layers", "ollama.layers"), ("huge", "ollama.manifest_bytes")]
)
async def test_an_ollama_manifest_past_its_bounds_is_refused(
    model: str, bound: str, hostile: HostileUpstream, make_cache: CacheFactory
) -> None:
    async with make_cache(**_env(hostile)) as cache:
        resource = parse_resource({"type": "Ollama", "model": model})
        with pytest.raises(UpstreamTooLarge, match=bound.replace(".", r"\.")):
            await cache.acquire(resource, holder="t")
    assert hostile.asked[f"manifest {model}"] == 1
