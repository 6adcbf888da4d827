"""Tree and paths-info answers from a listing: what is under a folder, page by page.

The listing holds upstream's recursive tree (files and folders, sorted by path), so a folder's
entries, recursive or not, and the entries of given paths are found without asking upstream.
Pages are cut as the Hub cuts them (1,000 entries) and chained with a `Link: rel="next"` header
whose cursor is an offset into the sorted entries.
"""

from __future__ import annotations

from ..sources.hub_listing import ListedEntry, Listing
from .answers import TreeEntry

PAGE = 1000
MAX_PATHS = 10_000
CURSOR_DIGITS = 18
"""A cursor of more digits is past every listing (and `int()` refuses more than 4,300)."""
"""Paths one paths-info request may ask about."""


def under(listing: Listing, folder: str, *, recursive: bool) -> list[ListedEntry] | None:
    """Entries below `folder` ("" for the root): every one, or only its children; None if
    the listing has no such folder."""
    if folder:
        found = listing.entry(folder)
        if found is None or found.type != "directory":
            return None
    prefix = f"{folder}/" if folder else ""
    below = []
    for entry in listing.entries:
        if not entry.path.startswith(prefix):
            continue
        if recursive or "/" not in entry.path[len(prefix) :]:
            below.append(entry)
    return below


def page(entries: list[ListedEntry], cursor: str | None) -> tuple[list[TreeEntry], int | None]:
    """One page from `cursor` on, and the cursor of the next (None on the last page)."""
    start = 0
    if cursor and cursor.isascii() and cursor.isdigit():  # ASCII: int() takes "²" as a digit
        digits = cursor.lstrip("0") or "0"
        start = int(digits) if len(digits) <= CURSOR_DIGITS else len(entries)
    chosen = entries[start : start + PAGE]
    following = start + PAGE if start + PAGE < len(entries) else None
    return [TreeEntry(**entry.raw) for entry in chosen], following


def paths_info(listing: Listing, paths: list[str]) -> list[TreeEntry]:
    """The entries of `paths` that exist, in the order asked (the Hub leaves others out)."""
    found = []
    for path in dict.fromkeys(p.strip("/") for p in paths):
        entry = listing.entry(path)
        if entry is not None:
            found.append(TreeEntry(**entry.raw))
    return found
