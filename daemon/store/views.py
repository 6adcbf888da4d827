"""Views: the read-only trees of hard links that containers get bind-mounted.

A view is built in `views/<id>.partial/` and renamed to `views/<id>/` when complete, so a
half-built view never carries a ready entry's name. File names come from upstream and are
hostile until proven otherwise: `validate_tree` refuses absolute paths, `..`, empty or
control-character components, and clashes (a file and a folder of one name, or duplicates),
before anything touches the disk. The tree holds only regular files we link ourselves, so no
link in it can point out of it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ..errors import UnsafeUpstream

MAX_COMPONENT = 255
MAX_PATH = 4096


def validate_relative_path(path: str) -> str:
    """The path itself if it is a safe relative POSIX path inside a view; else UnsafeUpstream."""
    problem = _path_problem(path)
    if problem:
        raise UnsafeUpstream(f"refused file name {path!r} from upstream: {problem}")
    return path


def _path_problem(path: str) -> str | None:
    if not path:
        return "empty name"
    if len(path.encode()) > MAX_PATH:
        return "name too long"
    if path.startswith("/"):
        return "absolute path"
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        return "control character in name"
    parts = path.split("/")
    for part in parts:
        if part in ("", "."):
            return "empty or '.' path component"
        if part == "..":
            return "'..' would leave the view"
        if len(part.encode()) > MAX_COMPONENT:
            return "path component too long"
    return None


def validate_tree(paths: Iterable[str]) -> None:
    """Every path safe, no duplicates, and no path both a file and a folder.

    Names that differ only by case are refused too: a job may copy its view to a filesystem
    that does not tell them apart, and one file would silently replace the other.
    """
    files: set[str] = set()
    folders: set[str] = set()
    by_case: dict[str, str] = {}
    for path in paths:
        validate_relative_path(path)
        for name in (path, *(str(p) for p in PurePosixPath(path).parents if str(p) != ".")):
            seen = by_case.setdefault(name.casefold(), name)
            if seen != name:
                raise UnsafeUpstream(
                    f"refused file name {path!r} from upstream: {name!r} differs from "
                    f"{seen!r} only by case"
                )
        if path in files:
            raise UnsafeUpstream(f"refused file name {path!r} from upstream: listed twice")
        if path in folders:
            raise UnsafeUpstream(f"refused file name {path!r} from upstream: also a folder")
        files.add(path)
        for parent in PurePosixPath(path).parents:
            name = str(parent)
            if name == ".":
                break
            if name in files:
                raise UnsafeUpstream(
                    f"refused file name {path!r} from upstream: {name!r} is also a file"
                )
            folders.add(name)


class Views:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, entry_id: str) -> Path:
        return self.root / entry_id

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def build(self, entry_id: str, files: Iterable[tuple[str, Path, bool]]) -> Path:
        """Link every `(relative path, blob path, executable)` into a fresh view; atomic rename.

        Executable files get a copy instead of a link (a blob's mode is shared by every
        view that links it, and blobs stay 0444); so does a blob at the hard-link limit.
        """
        final = self.path(entry_id)
        partial = self.root / f"{entry_id}.partial"
        remove_tree(partial)
        partial.mkdir()
        made: set[str] = set()
        for relative, blob, executable in files:
            validate_relative_path(relative)
            target = partial / relative
            parent = str(PurePosixPath(relative).parent)
            if parent != "." and parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(parent)
            if executable:
                shutil.copyfile(blob, target)
                os.chmod(target, 0o555)
                continue
            try:
                os.link(blob, target)
            except OSError as exc:
                if exc.errno != errno.EMLINK:  # too many links to one inode
                    raise
                shutil.copyfile(blob, target)
                os.chmod(target, 0o444)
        _seal(partial)
        remove_tree(final)
        os.rename(partial, final)
        return final

    def remove(self, entry_id: str) -> None:
        remove_tree(self.path(entry_id))
        remove_tree(self.root / f"{entry_id}.partial")

    def names(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError):
            return os.listdir(self.root)
        return []


def _seal(root: Path) -> None:
    """Folders of a view read-only (0555): nothing may add files to a view after it is built."""
    for folder, _dirs, _files in os.walk(root, topdown=False):
        os.chmod(folder, 0o555)


def remove_tree(path: Path) -> None:
    """Delete a view or partial view, opening its read-only folders first."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return

    for folder, _dirs, _files in os.walk(path):
        os.chmod(folder, stat.S_IRWXU)
    shutil.rmtree(path)
