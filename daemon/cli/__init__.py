"""The `nosana-cache` command: `serve` runs the daemon; every other command asks it over HTTP.

Exit codes: 0 done, 1 the operation failed, 2 usage or config error, 3 daemon unreachable.
"""

from .main import main

__all__ = ["main"]
