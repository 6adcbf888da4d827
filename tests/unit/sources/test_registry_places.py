"""Where the registry endpoint fetches a registry's content: its mirror, unless the pull has
credentials and the site does not share private data (the daemon's own pulls' rule)."""

from __future__ import annotations

import pytest

from daemon.settings import DockerSettings, DownloadSettings
from daemon.sources.registry_upstream import RegistryUpstream
from daemon.sources.transfer import Transfer
from daemon.util.clock import ManualClock

MIRRORS = {"ghcr.io": "127.0.0.1:5001", "registry.hub.docker.com": "127.0.0.1:5002"}


def upstream(*, share_private: bool) -> RegistryUpstream:
    transfer = Transfer(DownloadSettings(), allow_private=True, clock=ManualClock())
    settings = DockerSettings(host="unix:///x", registry_mirrors=MIRRORS)
    return RegistryUpstream(settings, transfer, share_private=share_private)


@pytest.mark.parametrize("share_private", [False, True])
def test_a_pull_without_credentials_fetches_from_the_mirror(share_private: bool) -> None:
    place = upstream(share_private=share_private).place("ghcr.io", private=False)
    assert (str(place.base), place.trusted) == ("http://127.0.0.1:5001", True)
    hub = upstream(share_private=share_private).place("docker.io", private=False)
    assert str(hub.base) == "http://127.0.0.1:5002"  # Docker Hub's names, by any alias


def test_a_pull_with_credentials_fetches_from_the_registrys_own_host() -> None:
    place = upstream(share_private=False).place("ghcr.io", private=True)
    assert (str(place.base), place.trusted) == ("https://ghcr.io", False)
    hub = upstream(share_private=False).place("docker.io", private=True)
    assert str(hub.base) == "https://registry-1.docker.io"


def test_a_site_that_shares_private_data_fetches_private_pulls_from_the_mirror_too() -> None:
    place = upstream(share_private=True).place("ghcr.io", private=True)
    assert str(place.base) == "http://127.0.0.1:5001"
