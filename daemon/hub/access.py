"""Who may read a repo out of the cache that upstream did not affirm is public: whoever
upstream lets read it.

A cached file is just bytes; what the Hub would refuse, the cache must refuse too. Only a repo
whose info says `private: false` (and, for its files, `gated: false`) is read without asking.
Every other one (private, gated, or of a Hub-like upstream that leaves the fields out) is
checked: the request's own token, or its lack of one, is put to the upstream Hub once (a HEAD
on one of the repo's files at the cached commit) and the answer is kept for
`huggingface.access_ttl`. Only a clear yes lets a request in (the file's answer: 200, or the
Hub's redirect to its content host, hub_upstream.py); a 401, a 403, a 404 (a mirror may answer
a bad token with a bare 404, no `X-Error-Code`) or anything unexpected is a refusal, in the
Hub's shape. A request without a token for a repo upstream said is private or gated is refused
here as the Hub refuses it, with no need to ask. While upstream cannot be asked, a token it
accepted before still reads (cached files are served while the Hub is down); one it never
accepted does not.

Answers are kept by repo and a digest of the token (never the token), in a bounded table, and
concurrent requests with one token share one question.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import UpstreamError, UpstreamRefused, UpstreamUnavailable
from ..logs import get_logger
from ..sources.hub_listing import Listing, RepoRef
from ..sources.hub_upstream import HubUpstream
from ..sources.identity import fingerprint
from ..util.clock import Clock

log = get_logger(__name__)

MAX_ANSWERS = 4096
_Key = tuple[RepoRef, str]
_NO_TOKEN = ""
"""The key of the answer to requests without a token."""


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
        if not listing.private and not (files and listing.gated):
            return  # upstream said anyone may read it
        if not authorization and _said_closed(listing, files=files):
            raise _refusal_without_token(listing)
        token = (fingerprint(authorization) or _NO_TOKEN) if authorization else _NO_TOKEN
        key = (listing.repo, token)
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
        authorization: str | None,
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

    async def _question(
        self, listing: Listing, authorization: str | None, path: str | None
    ) -> _Answer:
        probe = path or (listing.files[0].path if listing.files else None)
        if probe is None:
            return _Answer(self.clock.now(), None)  # nothing to read: nothing to refuse
        try:
            await self.upstream.check_access(listing.repo, listing.commit, probe, authorization)
        except UpstreamRefused as refusal:
            if refusal.code == "EntryNotFound":
                return _Answer(self.clock.now(), None)  # the Hub let it in; the file is gone
            log.info("hub.access_refused", repo=str(listing.repo), status=refusal.status)
            return _Answer(self.clock.now(), _in_hubs_shape(refusal, listing))
        except UpstreamUnavailable:
            raise
        except UpstreamError as exc:  # neither yes nor the Hub's no: not a yes
            log.info("hub.access_refused", repo=str(listing.repo), error=exc.message)
            return _Answer(self.clock.now(), _unclear(listing))
        return _Answer(self.clock.now(), None)


def _said_closed(listing: Listing, *, files: bool) -> bool:
    """Upstream said the repo is private (or gated, for its files): a request without a token
    is refused without asking. About a repo it said nothing of, upstream is asked."""
    info = listing.info
    return info.get("private") is True or (files and info.get("gated") not in (None, False))


def _in_hubs_shape(refusal: UpstreamRefused, listing: Listing) -> UpstreamRefused:
    """Upstream's refusal as a client's library takes it: the Hub's own (a 401 or 403, or
    one with an `X-Error-Code`) as it came, a bare 404 as the Hub's `RepoNotFound`, anything
    else as a 403."""
    if refusal.code is not None or refusal.status in (401, 403):
        return refusal
    if refusal.status == 404:
        reason = "Repository not found"
        return UpstreamRefused(
            f"{listing.repo}: {reason}", status=404, code="RepoNotFound", reason=reason
        )
    return _unclear(listing)


def _unclear(listing: Listing) -> UpstreamRefused:
    repo = listing.repo
    reason = f"the Hub did not say that this token may read {repo.type} {repo.id}"
    return UpstreamRefused(f"{repo}: {reason}", status=403, code=None, reason=reason)


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
