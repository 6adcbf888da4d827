"""What the endpoint last refused, per repository name: so a pull that failed says why.

An engine shows a registry's 5xx as its status alone (Docker: "received unexpected HTTP
status: 503 Service Unavailable"), never the error body that names the cause (upstream down,
which host, what it said). The daemon's own pulls through the endpoint read the cause here,
by the name they pulled, and put it in the op's error.
"""

from __future__ import annotations

from collections import OrderedDict

KEPT = 256
"""Names remembered (the newest); a refusal is read right after the pull it failed."""


class Refusals:
    def __init__(self) -> None:
        self._last: OrderedDict[str, str] = OrderedDict()

    def note(self, name: str, message: str) -> None:
        self._last[name] = message
        self._last.move_to_end(name)
        while len(self._last) > KEPT:
            self._last.popitem(last=False)

    def last(self, name: str) -> str | None:
        """The newest refusal of a request for `/v2/<name>/...`, taken (read once)."""
        return self._last.pop(name, None)
