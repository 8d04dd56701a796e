"""Wall-clock time and whether it can be trusted.

A Raspberry Pi has no real-time clock: until NTP has synchronised, time.time() may be 1970 or
the moment of the last shutdown. Every reading is stamped with whether the kernel considered the
clock synchronised when it was taken, asked the same way timedatectl asks (adjtimex: the clock
state is TIME_ERROR while STA_UNSYNC is set).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from typing import Optional

TIME_ERROR = 5


# systemd-timesyncd creates this once it has synchronised the clock (systemd >= 239).
TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"


def kernel_clock_synced() -> Optional[bool]:
    """True/False from adjtimex(2); None where the call is unavailable (e.g. a seccomp filter
    denies it), in which case timesyncd's flag file decides."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        # modes = 0 (the first field) makes this a read-only query; 512 bytes covers struct timex.
        buffer = ctypes.create_string_buffer(512)
        state = libc.adjtimex(buffer)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != TIME_ERROR)


def clock_synced() -> bool:
    synced = kernel_clock_synced()
    if synced is None:
        return os.path.exists(TIMESYNC_FLAG)
    return synced


class SystemClock:
    """mode: "auto" asks the kernel; "synced"/"unsynced" force the answer."""

    def __init__(self, mode: str = "auto") -> None:
        self.mode = mode

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        if self.mode != "auto":
            return self.mode == "synced"
        return clock_synced()


def boot_id() -> str:
    """This boot's id: monotonic times are comparable only within one boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:  # not Linux: the moment of boot, as well as it can be told
        return f"boot-{round(time.time() - time.monotonic())}"
