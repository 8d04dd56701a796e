"""The small shared vocabulary of room control."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """agent.clock.SystemClock satisfies it; tests pass tests/clocks.py FakeClock, moved by hand."""

    def monotonic(self) -> float: ...  # seconds, never stepped: durations, timers

    def time(self) -> float: ...  # wall clock, UTC epoch seconds: schedules, event stamps


@dataclass(frozen=True)
class Want:
    """A control rule's wish for one relay, with the reason a facility manager will read."""

    relay: str
    on: bool
    reason: str  # e.g. "zone chamber: 19.2 °C below comfort 21.0 − 0.5 (sensor climate)"


@dataclass(frozen=True)
class Event:
    """Something that switched, changed or went wrong, with why: published on <base>/events."""

    kind: str  # "relay", "input", "alarm", "mode", "scene", "energy"
    subject: str  # the relay, input, zone or scene name
    state: str  # e.g. "on", "off", "motion", "clear", "pressed", "stale", "resolved"
    reason: str
    timestamp: float  # wall clock (Clock.time())
