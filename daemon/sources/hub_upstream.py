"""What the Hub endpoint (`/hf`) asks of the upstream Hub, as store requests and resolvers.

- a revision: upstream's repo info and its recursive tree at the commit the revision names,
  kept as one `Listing` document (a one-file entry: `revision.json`, given inline);
- a file of a commit: a one-file entry whose bytes come through transfer.py (ranged, resumed,
  verified against the listing's LFS sha256 or git blob id), shared with HF resources by blob;
- access: whether a token may read a gated or private repo (a HEAD on one of its files).

Every request carries the requesting client's own `Authorization`, never the operator's
`huggingface.token`: the cache must not lend the host's access to a job. Refusals keep the
Hub's status and `X-Error-Code` (`UpstreamRefused`), since a client's library raises on them.
Entries say where they came from (`details.via = "/hf"`); their identity holds no credential,
because who may read them is checked per request (the endpoint's access checks).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

from yarl import URL

from ..errors import InvalidInput, StoreError, UpstreamError, UpstreamRefused, UpstreamTooLarge
from ..settings import HuggingFaceSettings
from ..store import (
    BlobSink,
    EntryDetails,
    EntryRequest,
    Expected,
    Fetch,
    FileFetch,
    FileSpec,
    Manifest,
)
from ..util.limits import ENTRY_FILES, HUB_ANSWER_BYTES, HUB_PAGES
from .hub_listing import LISTING_FILE, ListedEntry, Listing, RepoRef
from .identity import canonical
from .transfer import Response, Transfer

VIA = "/hf"
_REFUSALS = (400, 401, 403, 404)
_REDIRECTS = (301, 302, 303, 307, 308)
_FILE_HEADERS = ("X-Repo-Commit", "X-Linked-Etag")
"""What the Hub's redirect of a file to its content host carries (one is enough; the
headers are case-insensitive)."""
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class HubUpstream:
    """The upstream Hub (`huggingface.endpoint`) as the endpoint's requests need it."""

    def __init__(self, settings: HuggingFaceSettings, transfer: Transfer) -> None:
        self.endpoint = settings.endpoint
        self.origin = URL(str(self.endpoint)).origin()
        """Scheme, host and port of upstream: what its pages may link to, the token goes."""
        self.transfer = transfer

    def revision(
        self, repo: RepoRef, revision: str, authorization: str | None, known: Listing | None = None
    ) -> Fetch[_RevisionResolver]:
        """A revision's listing; `known` is the listing of that very commit if it is here
        already (a revision that is a commit hash), which spares upstream the question."""
        refuse_unsafe_revision(revision)
        identity = {"type": "HF", "via": VIA, "repo_type": repo.type, "repo": repo.id}
        identity["revision"] = revision
        request = EntryRequest(
            key=canonical(identity), type="hf", source=f"{repo}@{revision} (revision, via {VIA})"
        )
        return Fetch(request, _RevisionResolver(self, repo, revision, authorization, known))

    def file(
        self, listing: Listing, entry: ListedEntry, authorization: str | None
    ) -> FileFetch[_FileResolver]:
        """One file of a listed commit (`entry`, found in `listing`); its spec says what its
        bytes must be."""
        if not entry.is_file:
            raise UpstreamError(f"{listing.repo}: {entry.path} is no file at {listing.commit}")
        repo, path = listing.repo, entry.path
        identity = {"type": "HF", "via": VIA, "repo_type": repo.type, "repo": repo.id}
        identity |= {"commit": listing.commit, "path": path}
        request = EntryRequest(
            key=canonical(identity),
            type="hf",
            source=f"{repo}@{listing.commit[:12]}/{path} (via {VIA})",
        )
        expected = entry.expected
        alias = (
            None if expected.sha256 else f"hf:{self.endpoint}/{repo.prefix}{repo.id}@{entry.oid}"
        )
        spec = FileSpec(path=path, expected=expected, alias=alias)
        return FileFetch(request, spec, _FileResolver(self, listing, spec, authorization))

    def file_url(self, repo: RepoRef, commit: str, path: str) -> str:
        return f"{self.endpoint}/{repo.prefix}{repo.id}/resolve/{commit}/{quote(path)}"

    async def check_access(
        self, repo: RepoRef, commit: str, path: str, authorization: str | None
    ) -> None:
        """Whether upstream lets this token read the repo's files: returns on a clear yes
        (the file's answer, or the Hub's redirect of it to its content host); raises its
        refusal (`UpstreamRefused`), another `UpstreamError` for any other answer, or
        `UpstreamUnavailable` when it cannot be asked."""
        response = await self.transfer.get(
            self.file_url(repo, commit, path),
            name=str(repo),
            trusted=True,
            headers=_auth(authorization),
            method="HEAD",
            ok=(200, *_REDIRECTS, *_REFUSALS),
            follow=False,
        )
        _raise_refusal(response, repo)
        if response.status in _REDIRECTS and not any(h in response.headers for h in _FILE_HEADERS):
            # Not the Hub's redirect of a file (a mirror's to its login page, say): not a yes.
            raise UpstreamError(f"{repo}: the Hub redirected the check of {path} elsewhere")

    async def get_json(self, url: str, repo: RepoRef, authorization: str | None) -> Response:
        response = await self.transfer.get(
            url,
            name=str(repo),
            trusted=True,
            headers=_auth(authorization),
            ok=(200, *_REFUSALS),
            limit=HUB_ANSWER_BYTES,
        )
        _raise_refusal(response, repo)
        return response


class _RevisionResolver:
    def __init__(
        self,
        hub: HubUpstream,
        repo: RepoRef,
        revision: str,
        authorization: str | None,
        known: Listing | None,
    ) -> None:
        self.hub = hub
        self.repo = repo
        self.revision = revision
        self.authorization = authorization
        self.known = known

    async def resolve(self) -> Manifest:
        listing = self.known or await self._ask()
        data = listing.to_bytes()
        expected = Expected(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        details: EntryDetails = {
            "via": VIA,
            "repo_type": self.repo.type,
            "repo": self.repo.id,
            "revision": self.revision,
            "commit": listing.commit,
        }
        spec = FileSpec(path=LISTING_FILE, expected=expected, data=data)
        return Manifest(version=listing.commit, files=(spec,), details=details)

    async def _ask(self) -> Listing:
        hub, repo = self.hub, self.repo
        revision = quote(self.revision, safe="")
        base = f"{hub.endpoint}/api/{repo.api}/{repo.id}"
        info = _json_object(
            await hub.get_json(f"{base}/revision/{revision}", repo, self.authorization)
        )
        commit = info.get("sha")
        if not isinstance(commit, str) or not re.fullmatch(r"[0-9a-f]{40}", commit):
            raise UpstreamError(f"{repo}: the Hub named no commit for {self.revision!r}")
        entries: list[Any] = []  # upstream's tree objects, read by Listing.of
        url: str | None = f"{base}/tree/{commit}?recursive=true"
        files = 0
        for _page in range(HUB_PAGES.limit):
            if url is None:
                return Listing.of(repo, commit, info, entries)
            response = await hub.get_json(url, repo, self.authorization)
            page = json.loads(response.body)
            if not isinstance(page, list):
                raise UpstreamError(f"{repo}: the Hub's tree of {commit[:12]} is not a list")
            files += sum(1 for e in page if isinstance(e, dict) and e.get("type") == "file")
            too_many = ENTRY_FILES.over(files, f"{repo}: the Hub's tree of {commit[:12]}")
            if too_many:  # said before the next page is asked for
                raise UpstreamTooLarge(too_many)
            entries.extend(page)
            url = _next_page(response, hub.origin)
        said = f"{repo}: the Hub's tree of {commit[:12]} has more than {HUB_PAGES.limit:,} pages"
        raise UpstreamTooLarge(f"{said} (bound {HUB_PAGES.name})")

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        raise StoreError(f"{file.path}: a listing is given inline, never fetched")

    async def close(self) -> None:
        return None


class _FileResolver:
    def __init__(
        self, hub: HubUpstream, listing: Listing, spec: FileSpec, authorization: str | None
    ) -> None:
        self.hub = hub
        self.listing = listing
        self.spec = spec
        self.authorization = authorization

    async def resolve(self) -> Manifest:
        """Nothing to ask: the listing of the commit says what the file is."""
        listing = self.listing
        details: EntryDetails = {
            "via": VIA,
            "repo_type": listing.repo.type,
            "repo": listing.repo.id,
            "commit": listing.commit,
            "path": self.spec.path,
        }
        return Manifest(version=listing.commit, files=(self.spec,), details=details)

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        repo = self.listing.repo
        await self.hub.transfer.download(
            self.hub.file_url(repo, self.listing.commit, file.path),
            sink,
            name=f"{repo}/{file.path}",
            trusted=True,
            headers=_auth(self.authorization),
        )

    async def close(self) -> None:
        return None


def _auth(authorization: str | None) -> dict[str, str]:
    return {"Authorization": authorization} if authorization else {}


def _raise_refusal(response: Response, repo: RepoRef) -> None:
    if response.status not in _REFUSALS:
        return
    code = response.headers.get("X-Error-Code")
    reason = response.headers.get("X-Error-Message") or _error_text(response.body)
    said = f"{code}: {reason}" if code else reason
    raise UpstreamRefused(
        f"{repo}: the Hub answered {response.status} ({said})",
        status=response.status,
        code=code,
        reason=reason,
    )


def _error_text(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace").strip()
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return str(document["error"])
    return ""


def _json_object(response: Response) -> dict[str, Any]:
    try:
        document = json.loads(response.body)
    except ValueError as exc:
        raise UpstreamError(f"{response.url}: the Hub's answer is not JSON") from exc
    if not isinstance(document, dict):
        raise UpstreamError(f"{response.url}: the Hub's answer is not an object")
    return document


def refuse_unsafe_revision(revision: str) -> None:
    """A revision goes upstream as one path segment (`/revision/{rev}`, percent-encoded as
    huggingface_hub does: `refs/pr/1` as `refs%2Fpr%2F1`), but `.` and `..` stay as they are
    and would climb the path, and a server that decodes `%2F` first would climb on one of
    their segments: no git ref has one, so such a revision is refused."""
    if any(part in (".", "..") for part in revision.replace("\\", "/").split("/")):
        raise InvalidInput(f"{revision!r} is not a revision")


def _next_page(response: Response, origin: URL) -> str | None:
    """The next tree page, never off upstream's origin: its requests carry the client's
    token, which must not go to another host on a page's word."""
    match = _NEXT_LINK.search(response.headers.get("Link", ""))
    if match is None:
        return None
    try:
        following = response.url.join(URL(match.group(1), encoded=True))
        elsewhere = following.origin() != origin
    except ValueError as exc:
        raise UpstreamError(f"{response.url}: the Hub's next tree page is no URL") from exc
    if elsewhere:
        raise UpstreamError(
            f"{response.url.with_query(None)}: the Hub's tree links its next page to another "
            f"origin ({following.origin()}); not followed"
        )
    return str(following)
