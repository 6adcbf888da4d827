"""Revisions as they go up to the Hub: one path segment, and never one that climbs."""

from __future__ import annotations

import pytest

from daemon.errors import InvalidInput
from daemon.sources.hub_upstream import refuse_unsafe_revision


@pytest.mark.parametrize("revision", ["..", ".", "a/../b", "../x", "x/.", "..\\x", "a\\..\\b"])
def test_a_revision_with_a_climbing_segment_is_refused(revision: str) -> None:
    with pytest.raises(InvalidInput):
        refuse_unsafe_revision(revision)


@pytest.mark.parametrize("revision", ["main", "refs/pr/1", "v1.0", "feature/x.y", "a..b", "a" * 40])
def test_a_ref_name_passes(revision: str) -> None:
    refuse_unsafe_revision(revision)
