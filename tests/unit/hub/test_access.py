"""Access to gated and private repos: upstream's word per token, kept for the ttl, refused
here without a token, and a token once accepted still reads while upstream is down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from daemon.errors import UpstreamError, UpstreamRefused, UpstreamUnavailable
from daemon.hub.access import AccessChecks
from daemon.sources.hub_listing import RepoRef
from daemon.sources.hub_upstream import HubUpstream
from daemon.util.clock import ManualClock
from tests.unit.hub.listings import listing

GOOD = "Bearer hf_good"


@dataclass
class Upstream:
    """Stands where HubUpstream stands: accepts GOOD, refuses others, or is down."""

    asked: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False
    gate: asyncio.Event | None = None
    gone: set[str] = field(default_factory=set)
    refusal: UpstreamError = field(
        default_factory=lambda: UpstreamRefused("no", status=403, code=None, reason="Forbidden")
    )
    """What every token but GOOD gets."""
    anyone: bool = False
    """A request without a token gets in too (an open mirror)."""

    async def check_access(self, repo: RepoRef, commit: str, path: str, auth: str | None) -> None:
        self.asked.append((path, auth or ""))
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise UpstreamUnavailable("hub down")
        if auth == GOOD and path in self.gone:
            raise UpstreamRefused("gone", status=404, code="EntryNotFound", reason="gone")
        if auth != GOOD and not (self.anyone and auth is None):
            raise self.refusal


def checks(upstream: Upstream, clock: ManualClock) -> AccessChecks:
    return AccessChecks(cast(HubUpstream, upstream), ttl=60, clock=clock)


async def test_public_repos_and_a_gated_repos_card_ask_nothing() -> None:
    upstream = Upstream()
    access = checks(upstream, ManualClock())
    await access.check(listing(), None, files=True)
    await access.check(listing(gated="manual"), None, files=False)
    assert upstream.asked == []


@pytest.mark.parametrize(
    ("info", "code"), [({"gated": "manual"}, "GatedRepo"), ({"private": True}, "RepoNotFound")]
)
async def test_no_token_is_refused_here_as_the_hub_refuses_it(
    info: dict[str, Any], code: str
) -> None:
    upstream = Upstream()
    with pytest.raises(UpstreamRefused) as refused:
        await checks(upstream, ManualClock()).check(listing(**info), None, files=True)
    assert (refused.value.status, refused.value.code) == (401, code)
    assert upstream.asked == []


async def test_an_answer_is_kept_for_the_ttl_then_asked_again() -> None:
    upstream, clock = Upstream(), ManualClock()
    access, gated = checks(upstream, clock), listing(gated="manual")
    for _ in range(3):
        await access.check(gated, GOOD, files=True, path="config.json")
        with pytest.raises(UpstreamRefused):
            await access.check(gated, "Bearer hf_bad", files=True)
    assert upstream.asked == [("config.json", GOOD), ("config.json", "Bearer hf_bad")]
    clock.advance(61)
    await access.check(gated, GOOD, files=True)
    assert len(upstream.asked) == 3


async def test_while_upstream_is_down_only_a_token_it_accepted_reads() -> None:
    upstream, clock = Upstream(), ManualClock()
    access, gated = checks(upstream, clock), listing(gated="manual")
    await access.check(gated, GOOD, files=True)
    clock.advance(61)
    upstream.down = True
    await access.check(gated, GOOD, files=True)  # accepted before: still reads
    with pytest.raises(UpstreamUnavailable):
        await access.check(gated, "Bearer hf_never_seen", files=True)


async def test_concurrent_requests_with_one_token_ask_once() -> None:
    upstream = Upstream(gate=asyncio.Event())
    access, private = checks(upstream, ManualClock()), listing(private=True)
    waiting = [asyncio.ensure_future(access.check(private, GOOD, files=False)) for _ in range(8)]
    await asyncio.sleep(0)
    assert upstream.gate is not None
    upstream.gate.set()
    await asyncio.gather(*waiting)
    assert len(upstream.asked) == 1


async def test_a_file_gone_upstream_says_nothing_against_the_token() -> None:
    upstream = Upstream(gone={"config.json"})
    access, gated = checks(upstream, ManualClock()), listing(gated="manual")
    await access.check(gated, GOOD, files=True, path="config.json")
    await access.check(gated, GOOD, files=True, path="model.safetensors")
    assert len(upstream.asked) == 1


UNSAID = {"private": None, "gated": None}
"""A Hub-like upstream's repo info that says nothing of either."""


async def test_a_repo_upstream_said_nothing_of_is_asked_about_even_without_a_token() -> None:
    upstream = Upstream()
    access = checks(upstream, ManualClock())
    for files in (False, True):
        with pytest.raises(UpstreamRefused):
            await access.check(listing(**UNSAID), None, files=files)
    assert upstream.asked == [("config.json", "")]  # once: the answer is kept
    open_mirror = Upstream(anyone=True)
    await checks(open_mirror, ManualClock()).check(listing(**UNSAID), None, files=True)
    assert open_mirror.asked == [("config.json", "")]


async def test_a_repo_not_said_to_be_ungated_has_its_files_checked_but_not_its_card() -> None:
    upstream = Upstream()
    access = checks(upstream, ManualClock())
    await access.check(listing(gated=None), None, files=False)
    assert upstream.asked == []
    with pytest.raises(UpstreamRefused):
        await access.check(listing(gated=None), "Bearer hf_bad", files=True)
    await access.check(listing(gated=None), GOOD, files=True)
    assert [auth for _path, auth in upstream.asked] == ["Bearer hf_bad", GOOD]


async def test_a_bare_404_to_a_token_is_a_refusal_in_the_hubs_shape() -> None:
    bare = UpstreamRefused("404", status=404, code=None, reason="Not Found")
    upstream = Upstream(refusal=bare)
    access = checks(upstream, ManualClock())
    with pytest.raises(UpstreamRefused) as refused:
        await access.check(listing(private=True), "Bearer hf_bad", files=True)
    assert (refused.value.status, refused.value.code) == (404, "RepoNotFound")
    await access.check(listing(private=True), GOOD, files=True)


async def test_an_answer_neither_yes_nor_the_hubs_no_is_a_refusal() -> None:
    upstream = Upstream(refusal=UpstreamError("the Hub answered 410"))
    access = checks(upstream, ManualClock())
    for _ in range(2):
        with pytest.raises(UpstreamRefused) as refused:
            await access.check(listing(private=True), "Bearer hf_odd", files=True)
        assert refused.value.status == 403
    assert len(upstream.asked) == 1  # kept for the ttl like any answer
