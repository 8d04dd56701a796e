"""Waiting for a condition instead of for a fixed time: a test under load waits as long as it
must (up to its bound) and no longer."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float = 15.0, every: float = 0.05) -> T:
    """Calls `probe` until it returns something true, and returns that; after `timeout` seconds
    returns its last (false) answer, for the caller's assert to show."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer or time.monotonic() >= deadline:
            return answer
        time.sleep(every)
