"""aiobotocore clients are made once per endpoint and credentials, and bounded (no network:
a client connects only when it first sends a request)."""

from __future__ import annotations

import pytest

from daemon.errors import UnsafeUpstream
from daemon.settings import DownloadSettings
from daemon.sources.s3.clients import S3Clients
from daemon.sources.s3.places import ANONYMOUS, RESOURCE_IAM, Credentials, Place

OPERATORS = Place("http://127.0.0.1:9", "b", "p/", None, True, "s3://b/p")
KEYS = Credentials("AKIA1", "secret-1", "us-east-1", RESOURCE_IAM)


async def test_one_client_per_endpoint_and_credentials_lent_again_and_again() -> None:
    clients = S3Clients(DownloadSettings(), allow_private=False)
    try:
        async with clients.use(OPERATORS, KEYS) as first:
            pass
        async with clients.use(OPERATORS, KEYS) as again:
            assert again is first
        other_secret = Credentials("AKIA1", "secret-2", "us-east-1", RESOURCE_IAM)
        async with clients.use(OPERATORS, other_secret) as second:
            assert second is not first
        nobody = Credentials(None, None, "us-east-1", ANONYMOUS)
        elsewhere = Place("http://127.0.0.1:10", "b", "p/", None, True, "s3://b/p")
        async with clients.use(elsewhere, nobody) as third:
            assert third not in (first, second)
        assert len(clients) == 3
        assert "secret-1" not in repr(list(clients._clients))
    finally:
        await clients.close()
    assert len(clients) == 0


async def test_idle_clients_beyond_keep_are_closed_but_never_one_that_is_lent() -> None:
    clients = S3Clients(DownloadSettings(), allow_private=False, keep=1)
    try:
        async with clients.use(OPERATORS, KEYS) as held:
            for n in range(3):
                who = Credentials(f"AKIA{n}", "s", "us-east-1", RESOURCE_IAM)
                async with clients.use(OPERATORS, who):
                    pass
            assert len(clients) == 2  # the lent one, and the newest idle one
            async with clients.use(OPERATORS, KEYS) as same:
                assert same is held
    finally:
        await clients.close()


@pytest.mark.parametrize("endpoint", ["http://10.0.0.1:9", "http://[::1]:9", "http://127.0.0.1"])
async def test_a_job_chosen_private_endpoint_is_refused_before_any_client_exists(
    endpoint: str,
) -> None:
    clients = S3Clients(DownloadSettings(), allow_private=False)
    place = Place(endpoint, "b", "", None, False, f"{endpoint}/b")
    with pytest.raises(UnsafeUpstream, match="private, loopback or link-local"):
        async with clients.use(place, KEYS):
            pass
    assert len(clients) == 0
    await clients.close()
