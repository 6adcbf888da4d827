"""Hugging Face repos: huggingface_hub resolves and lists, our downloader moves the bytes.

`HfApi` (endpoint and token from the config or the resource's `accessToken`) turns `revision`
into a commit and lists the tree at that commit with sizes, git blob ids and LFS sha256s. Files
are then fetched from `{endpoint}/{repo}/resolve/{commit}/{path}` through transfer.py, which
follows the LFS redirect to the content host and keeps the token off every other host. The
entry is keyed by the commit, so `main` moving on later is a new entry, not a mixed one. LFS
files are verified against their sha256, others against their size and git blob id.

`HfApi` is imported when the first repo is listed, not with this module: it is a sixth of a
second of the daemon's start and of every CLI command.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx2
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .. import __version__
from ..errors import (
    NosanaCacheError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamTooLarge,
    UpstreamUnavailable,
)
from ..resources import HFResource
from ..settings import DownloadSettings, HuggingFaceSettings
from ..store import BlobSink, EntryDetails, EntryRequest, Expected, Fetch, FileSpec, Manifest
from ..util.clock import Clock
from ..util.limits import ENTRY_FILES
from ..util.retry import RetryPolicy, retrying
from .identity import canonical, fingerprint, sorted_files
from .transfer import Transfer

if TYPE_CHECKING:
    from huggingface_hub.hf_api import RepoFile


class HuggingFace:
    def __init__(
        self,
        settings: HuggingFaceSettings,
        download: DownloadSettings,
        transfer: Transfer,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.transfer = transfer
        self.clock = clock
        self.policy = RetryPolicy(download.max_retries)

    def request(self, resource: HFResource) -> Fetch[_HFResolver]:
        token = resource.accessToken or self.settings.token
        secret = token.get_secret_value() if token else None
        revision = resource.revision or "main"
        files = sorted_files(resource.files)
        identity = {
            "type": "HF",
            "repo": resource.repo,
            "revision": revision,
            "files": files,
            "credential": fingerprint(secret),
        }
        source = f"hf://{resource.repo}@{revision}"
        if files:
            source += f" ({len(files)} file{'s' if len(files) > 1 else ''})"
        request = EntryRequest(key=canonical(identity), type="hf", source=source)
        return Fetch(request, _HFResolver(self, resource.repo, revision, files, secret))


class _HFResolver:
    def __init__(
        self, hub: HuggingFace, repo: str, revision: str, files: list[str] | None, token: str | None
    ) -> None:
        self.hub = hub
        self.repo = repo
        self.revision = revision
        self.files = files
        self.token = token
        self.commit: str | None = None

    async def resolve(self) -> Manifest:
        commit, tree = await retrying(
            lambda: asyncio.to_thread(self._list),
            self.hub.policy,
            self.hub.clock,
            retry_if=lambda exc: isinstance(exc, UpstreamUnavailable),
        )
        self.commit = commit
        specs = [self._spec(item) for item in tree if self._wanted(item.path)]
        if self.files:
            missing = sorted(set(self.files) - {s.path for s in specs})
            if missing:
                raise UpstreamNotFound(
                    f"hf://{self.repo}@{self.revision}: no such file(s) at commit {commit[:12]}: "
                    + ", ".join(missing)
                )
        details: EntryDetails = {"repo": self.repo, "revision": self.revision, "commit": commit}
        return Manifest(version=commit, files=tuple(specs), details=details)

    def _wanted(self, path: str) -> bool:
        return self.files is None or path in self.files

    def _spec(self, item: RepoFile) -> FileSpec:
        endpoint = self.hub.settings.endpoint
        if item.lfs is not None:
            expected = Expected(size=item.size, sha256=item.lfs.sha256)
            alias = None
        else:
            expected = Expected(size=item.size, git_sha1=item.blob_id)
            alias = f"hf:{endpoint}/{self.repo}@{item.blob_id}"
        return FileSpec(path=item.path, expected=expected, alias=alias)

    def _list(self) -> tuple[str, list[RepoFile]]:
        """Commit and files of the repo at `revision` (runs in a thread: HfApi is sync)."""
        from huggingface_hub.hf_api import HfApi, RepoFile  # lazily: see the docstring

        api = HfApi(
            endpoint=self.hub.settings.endpoint,
            token=self.token or False,
            library_name="nosana-cache",
            library_version=__version__,
        )
        try:
            info = api.model_info(self.repo, revision=self.revision, timeout=30)
            if not info.sha:
                raise UpstreamError(f"hf://{self.repo}: the Hub sent no commit for {self.revision}")
            files: list[RepoFile] = []
            for item in api.list_repo_tree(self.repo, revision=info.sha, recursive=True):
                if isinstance(item, RepoFile):
                    files.append(item)
                    too_many = ENTRY_FILES.over(len(files), f"hf://{self.repo}@{info.sha[:12]}")
                    if too_many:  # said before the next page is asked for
                        raise UpstreamTooLarge(too_many)
        except NosanaCacheError:
            raise
        except Exception as exc:
            raise _hub_error(exc, self.repo, self.revision, self.token) from exc
        return info.sha, files

    async def close(self) -> None:
        return None

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        assert self.commit is not None, "resolve() comes first"
        endpoint = self.hub.settings.endpoint
        url = f"{endpoint}/{self.repo}/resolve/{self.commit}/{quote(file.path)}"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            await self.hub.transfer.download(
                url, sink, name=f"{self.repo}/{file.path}", trusted=True, headers=headers
            )
        except UpstreamAuthError as exc:
            if "GatedRepo" in exc.message:
                raise UpstreamAuthError(_gated(self.repo, self.token)) from exc
            raise


def _gated(repo: str, token: str | None) -> str:
    if token:
        return f"hf://{repo} is gated and this token has no access: accept its terms on the Hub"
    return (
        f"hf://{repo} is gated: accept its terms on the Hub and give a token "
        "(the resource's accessToken, or huggingface.token)"
    )


def _hub_error(exc: Exception, repo: str, revision: str, token: str | None) -> NosanaCacheError:
    """huggingface_hub's errors, as ours (with advice, and never the token)."""
    if isinstance(exc, GatedRepoError):
        return UpstreamAuthError(_gated(repo, token))
    if isinstance(exc, RevisionNotFoundError):
        return UpstreamNotFound(f"hf://{repo}: no revision {revision!r}")
    if isinstance(exc, RepositoryNotFoundError):
        hint = "" if token else " (or it is private: give a token)"
        return UpstreamNotFound(f"hf://{repo}: no such repo{hint}")
    if isinstance(exc, HfHubHTTPError):
        status = _status(exc)
        if status in (401, 403):
            who = "with the given token" if token else "without a token"
            return UpstreamAuthError(f"hf://{repo}: access denied {who} ({status})")
        if status is None or status >= 500 or status == 429:
            return UpstreamUnavailable(f"hf://{repo}: the Hub answered {status}")
        return UpstreamError(f"hf://{repo}: the Hub answered {status}: {exc}")
    if isinstance(exc, httpx2.HTTPError | OSError):
        return UpstreamUnavailable(f"hf://{repo}: the Hub is unreachable: {exc}")
    return UpstreamError(f"hf://{repo}: {type(exc).__name__}: {exc}")


def _status(exc: HfHubHTTPError) -> int | None:
    response: Any = getattr(exc, "response", None)
    return getattr(response, "status_code", None)
