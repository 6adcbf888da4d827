"""The process's limit on open files, raised as far as the system allows.

Every API connection, download part, temp file and SQLite file is a descriptor; a shell's soft
limit of 1,024 is reached by a burst of clients during a large download, and `accept` then
fails. The hard limit is what the operator (or systemd's LimitNOFILE) granted; the soft limit
is only a default, so the daemon takes what it was granted.
"""

from __future__ import annotations

import resource

from .logs import get_logger

log = get_logger(__name__)


def raise_open_files_limit() -> int:
    """Set the soft RLIMIT_NOFILE to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("limits.open_files_unchanged", soft=soft, hard=hard, error=str(exc))
        return soft
    return hard
