"""systemd's notify protocol, spoken directly: READY=1, STOPPING=1, and watchdog pings.

`Type=notify` units learn the daemon serves when it sends READY=1 over the datagram socket
in `$NOTIFY_SOCKET`. With `WatchdogSec=`, systemd sets `$WATCHDOG_USEC` and restarts the unit
when pings stop; the pings come from the event loop itself, so a loop that hangs stops
pinging and gets restarted. Without `$NOTIFY_SOCKET` every call does nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from ..logs import get_logger

log = get_logger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str]) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 2_000_000 if usec.isdigit() and mine else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *fields: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall("\n".join(fields).encode())
        except OSError as exc:
            log.warning("systemd.notify_failed", error=str(exc))

    async def watchdog(self) -> None:
        """Ping every half watchdog period until cancelled."""
        if self.watchdog_interval is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_interval)
