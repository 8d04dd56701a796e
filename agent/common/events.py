"""An event: something that switched, changed or went wrong, with why. Room control, the energy
meters and analytics all raise them, so the type sits below all of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Something that switched, changed or went wrong, with why: published on <base>/events."""

    kind: str  # "relay", "input", "alarm", "mode", "scene", "energy", "meter"
    subject: str  # the relay, input, zone or scene name
    state: str  # e.g. "on", "off", "motion", "clear", "pressed", "stale", "resolved"
    reason: str
    timestamp: float  # wall clock (Clock.time())
