"""Filling the node's volume from an entry's view, the way the helper would have filled it.

The view's tree is reproduced under the volume's mount point, paths kept: what a job finds
at its `target` is what the daemon's own jobs find there. Files are hard links to the store's
blobs where the volume lives on the store's filesystem (a hit fills in the time it takes to
make a few links, and costs no space), and copies where it does not (another filesystem:
`EXDEV`) or where the job may write (`copy=True`; a link would let the job change the store).
A file already there as the same inode is left; any other file at that path is replaced, so a
volume the real helper filled before is brought to the view's content. Files the view lacks
are left alone, as the helper leaves them.

`unlink_copies` turns a linked volume into copies in place: for a volume the node then
mounts writable (an S3 resource with `allowWrite`), which the helper's create does not say.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..store.views import validate_relative_path

_NOT_LINKABLE = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES)


@dataclass
class FillProgress:
    """Counters the filling thread moves and the event loop reads (ints: no lock needed)."""

    files: int = 0
    bytes: int = 0
    linked: int = 0
    copied: int = 0


def fill_volume(view: Path, volume: Path, progress: FillProgress, *, copy: bool) -> None:
    """The view's files at the same paths under `volume`, linked or copied."""
    link = not copy
    for folder, dirs, files in os.walk(view):
        here = Path(folder)
        relative = here.relative_to(view)
        if relative != Path("."):
            validate_relative_path(str(relative))
        (volume / relative).mkdir(parents=True, exist_ok=True)
        dirs.sort()
        for name in sorted(files):
            source = here / name
            link = _place(source, volume / relative / name, link=link, progress=progress)
            progress.files += 1
            progress.bytes += source.stat().st_size


def _place(source: Path, dest: Path, *, link: bool, progress: FillProgress) -> bool:
    """Put `source` at `dest`; whether links still work on this filesystem."""
    if dest.is_symlink() or dest.exists():
        if link and not dest.is_symlink() and os.path.samefile(source, dest):
            progress.linked += 1
            return link
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        else:
            dest.unlink()
    if link:
        try:
            os.link(source, dest, follow_symlinks=False)
            progress.linked += 1
            return True
        except OSError as exc:
            if exc.errno not in _NOT_LINKABLE:
                raise
    _copy(source, dest)
    progress.copied += 1
    return False


def _copy(source: Path, dest: Path) -> None:
    """A copy of the file's bytes, writable by its owner (the job may change it)."""
    partial = dest.with_name(f".{dest.name}.nosana-cache-partial")
    try:
        shutil.copyfile(source, partial)
        os.chmod(partial, 0o644 | (0o111 if os.access(source, os.X_OK) else 0))
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)


def unlink_copies(volume: Path) -> int:
    """Replace every file of `volume` that has other links (the store's) by a copy."""
    replaced = 0
    for folder, _dirs, files in os.walk(volume):
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink() and path.stat().st_nlink > 1:
                _copy(path, path)
                replaced += 1
    return replaced
