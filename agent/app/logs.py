"""Logging for a headless service: journald-friendly and rate-limited.

Under systemd (JOURNAL_STREAM set) lines carry no timestamp, since the journal adds its own.
A message template that repeats (a dead sensor retried every second) is let through a few times
per window and then summarised, so a fault cannot fill an SD card with log lines.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Callable


class RateLimitFilter(logging.Filter):
    def __init__(
        self, burst: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.burst, self.window, self.clock = burst, window, clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        start, count = self._seen.get(key, (now, 0))
        if now - start >= self.window:
            if count > self.burst:
                record.msg = f"{record.msg} (and {count - self.burst} more like it in the last "
                record.msg += f"{self.window:.0f} s)"
            start, count = now, 0
        count += 1
        self._seen[key] = (start, count)
        if len(self._seen) > 1000:  # templates are few; this only bounds a pathological caller
            self._seen.clear()
        return count <= self.burst


def setup(level: str = "INFO") -> None:
    under_journal = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not under_journal:
        fmt = "%(asctime)s " + fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(RateLimitFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
