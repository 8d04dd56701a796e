"""Waiting for a condition instead of for a fixed time: a test under load waits as long as it
must (up to its bound) and no longer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from datetime import datetime
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


def instant(ts: str) -> float:
    """An RFC 3339 time as the agent writes it ("2026-11-24T17:32:06.123Z"), in epoch seconds."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def taken_after(payloads: Iterable[bytes], t: float) -> bool:
    """Whether one of these buffered messages (JSON with "ts") was taken after `t` (epoch s).
    The agent's buffer sends in sequence order, so once one taken after `t` has arrived, all
    it buffered before `t` has too: a barrier, where a sleep would only be a guess."""
    return any(instant(json.loads(p)["ts"]) > t for p in payloads)


async def until(probe: Callable[[], T], timeout: float = 15.0, every: float = 0.02) -> T:
    """wait_until for a test running on an event loop: the loop runs on while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer or time.monotonic() >= deadline:
            return answer
        await asyncio.sleep(every)
