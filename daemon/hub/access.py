"""Who may read a gated or private repo out of the cache: whoever upstream lets read it.

A cached file is just bytes; what the Hub would refuse, the cache must refuse too. For a
private repo (everything) and a gated one (its files), the request's own token is put to the
upstream Hub once (a HEAD on one of the repo's files at the cached commit) and its answer,
allowed or the Hub's refusal, is kept for `huggingface.access_ttl`. A request without a token
is refused here as the Hub refuses it, with no need to ask. While upstream cannot be asked, a
token it accepted before still reads (cached files are served while the Hub is down); one it
never accepted does not.

Answers are kept by repo and a digest of the token (never the token), in a bounded table, and
concurrent requests with one token share one question.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from ..clock import Clock
from ..errors import UpstreamRefused, UpstreamUnavailable
from ..logs import get_logger
from ..sources.hub_listing import Listing, RepoRef
from ..sources.hub_upstream import HubUpstream
from ..sources.identity import fingerprint

log = get_logger(__name__)

MAX_ANSWERS = 4096
_Key = tuple[RepoRef, str]


@dataclass(frozen=True)
class _Answer:
    at: float
    refusal: UpstreamRefused | None  # None: allowed


class AccessChecks:
    def __init__(self, upstream: HubUpstream, ttl: float, clock: Clock) -> None:
        self.upstream = upstream
        self.ttl = ttl
        self.clock = clock
        self._answers: OrderedDict[_Key, _Answer] = OrderedDict()
        self._asking: dict[_Key, asyncio.Future[_Answer]] = {}

    async def check(
        self, listing: Listing, authorization: str | None, *, files: bool, path: str | None = None
    ) -> None:
        """Return if this request may read `listing`'s repo (its files, with `files`); raise
        the Hub's refusal otherwise. `path` names the file to ask about."""
        if not (listing.private or (files and listing.gated)):
            return
        if not authorization:
            raise _refusal_without_token(listing)
        key = (listing.repo, fingerprint(authorization) or "")
        answer = self._answers.get(key)
        if answer is None or self.clock.now() - answer.at >= self.ttl:
            answer = await self._ask(key, listing, authorization, path, answer)
        refusal = answer.refusal
        if refusal is not None:  # a fresh error each time, as the Hub gives a fresh answer
            raise UpstreamRefused(
                refusal.message, status=refusal.status, code=refusal.code, reason=refusal.reason
            )

    async def _ask(
        self,
        key: _Key,
        listing: Listing,
        authorization: str,
        path: str | None,
        previous: _Answer | None,
    ) -> _Answer:
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._question(listing, authorization, path))
            self._asking[key] = asking
            asking.add_done_callback(lambda done: self._asked(key, done))
        try:
            answer = await asyncio.shield(asking)
        except UpstreamUnavailable:
            if previous is not None and previous.refusal is None:
                log.warning("hub.access_unchecked", repo=str(listing.repo), reason="upstream down")
                return previous  # accepted before; upstream cannot say otherwise now
            raise
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > MAX_ANSWERS:
            self._answers.popitem(last=False)
        return answer

    def _asked(self, key: _Key, done: asyncio.Future[_Answer]) -> None:
        self._asking.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter gets it through the shield

    async def _question(self, listing: Listing, authorization: str, path: str | None) -> _Answer:
        probe = path or (listing.files[0]["path"] if listing.files else None)
        if probe is None:
            return _Answer(self.clock.now(), None)  # nothing to read: nothing to refuse
        try:
            await self.upstream.check_access(listing.repo, listing.commit, probe, authorization)
        except UpstreamRefused as refusal:
            if not _about_access(refusal):
                return _Answer(self.clock.now(), None)  # the token got in; the file is gone
            log.info("hub.access_refused", repo=str(listing.repo), status=refusal.status)
            return _Answer(self.clock.now(), refusal)
        return _Answer(self.clock.now(), None)


def _about_access(refusal: UpstreamRefused) -> bool:
    """A refusal of the token (401, 403, an unknown or gated repo), not of a missing file."""
    return refusal.status in (401, 403) or refusal.code in ("RepoNotFound", "GatedRepo")


def _refusal_without_token(listing: Listing) -> UpstreamRefused:
    """What the Hub answers a request without a token (huggingface_hub raises
    `RepositoryNotFoundError` and `GatedRepoError` on these)."""
    repo = listing.repo
    if listing.private:
        reason = "Repository not found"
        return UpstreamRefused(f"{repo}: {reason}", status=401, code="RepoNotFound", reason=reason)
    reason = (
        f"Access to {repo.type} {repo.id} is restricted. You must have access to it and be "
        "authenticated to access it. Please log in."
    )
    return UpstreamRefused(f"{repo}: {reason}", status=401, code="GatedRepo", reason=reason)
