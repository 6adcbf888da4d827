"""Which registry entries a restarted daemon fetches again by itself (sources/registry.py)."""

from __future__ import annotations

from dataclasses import replace

from daemon.settings import DockerSettings, DownloadSettings
from daemon.sources.registry import RegistrySource, Repository
from daemon.sources.registry_upstream import Credential, RegistryUpstream
from daemon.sources.transfer import Transfer
from daemon.store import Entry, EntryState
from daemon.util.clock import ManualClock

DIGEST = "sha256:" + "ab" * 32
REPO = Repository("ghcr.io", "nosana/app")


def source() -> RegistrySource:
    transfer = Transfer(DownloadSettings(), allow_private=True, clock=ManualClock())
    return RegistrySource(RegistryUpstream(DockerSettings(host="unix:///x"), transfer))


def entry_of(key: str, type_: str, resumable: str | None) -> Entry:
    return Entry(
        id="e1", request_key=key, type=type_, source="s", request="{}", resumable=resumable,
        version=None, details={}, state=EntryState.PENDING, error=None, size_bytes=0,
        file_count=0, created_at=0.0, downloaded_at=None, last_used_at=None, hits=0,
        pinned_by=(), leases=0, external=False,
    )  # fmt: skip


def test_a_public_blob_is_resumed_as_it_was_asked_for() -> None:
    blob = source().blob(REPO, DIGEST, 123, None)
    request = blob.request
    assert request.resumable is not None
    resumed = source().resumed_blob(entry_of(request.request_key, request.type, request.resumable))
    assert resumed is not None
    assert resumed.request.request_key == request.request_key  # the same entry: its bytes so far
    assert resumed.spec == blob.spec
    assert resumed.resolver.place.registry == "ghcr.io"
    assert resumed.resolver.credential is None


def test_a_private_blob_keeps_no_credential_to_resume_with() -> None:
    request = source().blob(REPO, DIGEST, 123, Credential("Basic YTpi")).request
    assert request.resumable is None
    assert source().resumed_blob(entry_of(request.request_key, request.type, None)) is None


def test_other_entries_are_not_registry_blobs() -> None:
    tag = source().tag(REPO, "1", None).request
    assert tag.resumable is None
    hf = entry_of("k", "HF", '{"type": "HF", "repo": "a/b"}')
    assert source().resumed_blob(hf) is None
    damaged = replace(hf, type="registry", resumable='{"digest": 1}')
    assert source().resumed_blob(damaged) is None
