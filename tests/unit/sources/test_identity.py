"""Identities: who an entry is fetched as, read back from its canonical key."""

from __future__ import annotations

import pytest

from daemon.sources.identity import canonical, credential_of, fingerprint


@pytest.mark.parametrize(
    ("identity", "credential"),
    [
        ({"type": "HF", "repo": "a/b", "credential": None}, None),
        ({"type": "HF", "repo": "a/b", "credential": fingerprint("hf_x")}, fingerprint("hf_x")),
        ({"type": "S3", "credential": "anonymous"}, None),
        ({"type": "S3", "credential": "AKIA123"}, "AKIA123"),
        ({"type": "S3", "credential": "the AWS credential chain"}, "the AWS credential chain"),
        ({"type": "Ollama", "registry": "https://registry.ollama.ai", "tag": "8b"}, None),
    ],
)
def test_the_credential_an_entry_is_fetched_as(
    identity: dict[str, object], credential: str | None
) -> None:
    assert credential_of(canonical(identity)) == credential
