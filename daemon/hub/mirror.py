"""The Hub endpoint's work, behind its routes: which revision a request means, whether it may
read it, and a file's bytes out of the store.

    listing(repo, revision)      revisions.py: the commit and listing, once per ttl
      └─ access                  access.py: gated and private repos, per token, upstream's word
    open(listing, entry)         a one-file entry of the store (shared by blob with HF
                                 resources), read as it lands (store.open_file)
      └─ site                    the site store in front of upstream, for public repos
"""

from __future__ import annotations

from ..settings import HuggingFaceSettings
from ..site import Site
from ..sources.hub_listing import ListedEntry, Listing, RepoRef
from ..sources.hub_upstream import HubUpstream
from ..store import FileStream, Resolver, Store
from ..util.clock import Clock
from .access import AccessChecks
from .problems import EntryNotFound
from .revisions import Revisions

READ_HOLDER = "hub:read"
"""The lease holder of a file being read: a restarted daemon drops such leases."""


class HubMirror:
    def __init__(
        self,
        settings: HuggingFaceSettings,
        store: Store,
        upstream: HubUpstream,
        clock: Clock,
        site: Site | None = None,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.site = site
        """The site store (`site.store`), in front of upstream for files of public repos."""
        self.revisions = Revisions(store, upstream)
        self.access = AccessChecks(upstream, settings.access_ttl, clock)

    async def listing(
        self, repo: RepoRef, revision: str, authorization: str | None, *, files: bool = False
    ) -> Listing:
        """The repo at `revision`, if this request may see it (its files, with `files`)."""
        listing = await self.revisions.listing(repo, revision, authorization)
        await self.access.check(listing, authorization, files=files)
        return listing

    async def file(
        self, repo: RepoRef, revision: str, path: str, authorization: str | None
    ) -> tuple[Listing, ListedEntry]:
        """A file's listing and tree entry, if this request may read it."""
        listing = await self.revisions.listing(repo, revision, authorization)
        entry = listing.file(path)
        # Upstream is asked about a file it has: a missing one says nothing of the token.
        await self.access.check(listing, authorization, files=True, path=path if entry else None)
        if entry is None:
            raise EntryNotFound(
                f"{repo}: {path} does not exist at {listing.commit}", listing.commit
            )
        return listing, entry

    async def open(
        self, listing: Listing, entry: ListedEntry, authorization: str | None
    ) -> FileStream:
        """The file's bytes (`entry`, as `file` found it): a hit, or fetched once (from the
        site store, else upstream with this request's token) and read as they land. Close
        the stream when done."""
        fetch = self.upstream.file(listing, entry, authorization)
        resolver: Resolver = fetch.resolver
        if self.site is not None:
            # Keyed without a token (access is checked per request), so the identity cannot
            # keep a repo upstream keeps from anyone out of the site store: the listing does.
            # Another node's manifest of the file is held to what this node's listing says.
            announced = await fetch.resolver.resolve()  # the listing's word: no upstream call
            resolver = self.site.wrap(
                fetch.request, fetch.resolver, private=not listing.public, announced=announced
            )
        return await self.store.open_file(fetch.request, resolver, fetch.spec, READ_HOLDER)
