"""The sd_notify protocol, spoken directly: a datagram to $NOTIFY_SOCKET, no library needed.

systemd's protocol is one `KEY=value` line per field in a datagram to a unix socket whose path
is in NOTIFY_SOCKET (a leading '@' means the abstract namespace). Outside systemd the variable
is unset and every call is a no-op, so the agent runs the same by hand, in tests and in a unit.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Optional

log = logging.getLogger("roomagent.systemd")


class Notifier:
    def __init__(self, environ: Optional[dict[str, str]] = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET", "")
        self._socket: Optional[socket.socket] = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, **fields: str) -> bool:
        """notify(READY="1", STATUS="...") sends READY=1 and STATUS=... in one datagram."""
        if self._socket is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        address = self.address
        if address.startswith("@"):
            address = "\0" + address[1:]
        try:
            self._socket.sendto(message, address)
        except OSError as e:  # systemd gone (shutting down): nothing useful to do about it
            log.debug("sd_notify failed: %s", e)
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog_interval(env: os._Environ[str] | dict[str, str]) -> Optional[float]:
    """Seconds between keep-alives, or None when systemd wants none (or not from us)."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    # Half the timeout, as sd_watchdog_enabled(3) advises, so one late ping is not fatal.
    return int(usec) / 1e6 / 2
