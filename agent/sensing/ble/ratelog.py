"""Logging that cannot flood the journal: a sensor that sends a bad packet ten times a second
is worth one line a minute, with how many were left out."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

EVERY = 60.0  # s between two lines about the same thing


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        every: float = EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.every, self.clock = logger, every, clock
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: Any, exc_info: bool = False) -> bool:
        """Logs unless a line with the same key went out less than `every` seconds ago; the
        next line that does go out says how many were left out in between."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._left_out[key] = self._left_out.get(key, 0) + 1
            return False
        self._last[key] = now
        left_out = self._left_out.pop(key, 0)
        if left_out:
            message += f" (and {left_out} more like it in the last %.0f s)"
            args = (*args, now - (last if last is not None else now))
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True
