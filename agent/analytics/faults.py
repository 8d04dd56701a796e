"""Fault detection for one room: what goes unnoticed for months in public buildings.

Six rules, each a fault that is *detected* once its condition has held for its configured time
and *cleared* when the condition ends, always with the reason an operator can act on:

- `window_open`: heating or cooling on while a window or door contact has been open too long;
- `short_cycling`: a relay started more often than its plant tolerates in a window of time;
- `setpoint_unmet`: a zone at full output for an hour and still short of its setpoint;
- `sensors_disagree`: two sensors of the room disagree on one quantity for too long;
- `frozen`: a sensor repeats exactly the same value too many readings in a row (stuck firmware,
  a dead converter answering its last value);
- `meter_mismatch`: a relay commanded on whose metered circuit draws nothing, or off while it draws.

Pure logic: the runtime feeds observations with the clock's times and publishes the events
(agent.common.events.Event, kind "fault") and `active()` (the room's `problem` state).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from agent.common.events import Event
from agent.config.analytics import FaultConfig, finite

FAULTS = (
    "window_open", "short_cycling", "setpoint_unmet", "sensors_disagree", "frozen",
    "meter_mismatch",
)  # fmt: skip
HVAC_KINDS = frozenset({"heat", "cool"})


@dataclass
class _Condition:
    since: Optional[float] = None  # monotonic: when the condition began
    active: bool = False
    reason: str = ""


class FaultMonitor:
    def __init__(self, config: FaultConfig, relay_kinds: Mapping[str, str]) -> None:
        self.config = config
        self._kinds = dict(relay_kinds)  # relay -> kind ("heat", "cool", "light", ...)
        self._conditions: dict[tuple[str, str], _Condition] = {}
        self._relays: dict[str, bool] = {}
        self._starts: dict[str, deque[float]] = {}
        self._contacts: dict[str, Optional[float]] = {}  # contact -> when it opened (or None)
        self._zones: dict[str, tuple[bool, float, float, str]] = {}  # full, temp, setpoint, dir
        self._power: dict[str, tuple[float, float]] = {}  # relay -> watts, when
        self._latest: dict[str, dict[str, tuple[float, float]]] = {}  # quantity -> device -> v, t
        self._repeats: dict[tuple[str, str], tuple[float, int]] = {}

    # Observations.

    def relay(self, name: str, on: bool, now: float) -> None:
        if on and not self._relays.get(name, False):
            self._starts.setdefault(name, deque()).append(now)
        self._relays[name] = on

    def contact(self, name: str, is_open: bool, now: float) -> None:
        was = self._contacts.get(name)
        self._contacts[name] = (was if was is not None else now) if is_open else None

    def zone(
        self,
        name: str,
        full_output: bool,
        temperature: float,
        setpoint: float,
        direction: str,
    ) -> None:
        """`full_output`: every stage of `direction` ("heat" or "cool") is on."""
        self._zones[name] = (full_output, temperature, setpoint, direction)

    def power(self, relay: str, watts: float, now: float) -> None:
        """The metered draw of the circuit that `relay` switches."""
        self._power[relay] = (watts, now)

    def reading(self, device: str, quantity: str, value: float, now: float) -> None:
        if not finite(value):
            return
        self._latest.setdefault(quantity, {})[device] = (value, now)
        if quantity in self.config.frozen_quantities:
            key = (device, quantity)
            last, count = self._repeats.get(key, (math.nan, 0))
            self._repeats[key] = (value, count + 1 if value == last else 1)

    # Evaluation.

    def tick(self, now: float, wall: float) -> list[Event]:
        """Every rule against what was observed; the faults detected or cleared since the last
        tick, as events stamped with `wall`."""
        found: dict[tuple[str, str], tuple[str, float]] = {}  # (fault, subject) -> reason, hold
        c = self.config
        self._window_open(found)
        self._short_cycling(now, found)
        for zone, (full, temp, setpoint, direction) in self._zones.items():
            short = setpoint - temp if direction == "heat" else temp - setpoint
            if c.unmet_minutes > 0 and full and short >= c.unmet_margin:
                why = (f"zone {zone}: {direction} at full output, {temp:.1f} °C against "
                       f"setpoint {setpoint:.1f} °C")  # fmt: skip
                found[("setpoint_unmet", zone)] = (why, c.unmet_minutes * 60)
        self._disagreement(now, found)
        if c.frozen_readings > 0:
            for (device, quantity), (value, count) in self._repeats.items():
                if count >= c.frozen_readings:
                    why = f"{device} {quantity}: {value:g} in {count} readings in a row"
                    found[("frozen", f"{device}.{quantity}")] = (why, 0.0)
        self._meters(now, found)
        return self._settle(found, now, wall)

    def active(self) -> dict[str, str]:
        """The faults in force: "fault:subject" -> reason."""
        return {f"{f}:{s}": c.reason for (f, s), c in self._conditions.items() if c.active}

    def _window_open(self, found: dict[tuple[str, str], tuple[str, float]]) -> None:
        minutes = self.config.window_open_minutes
        opened = {n: t for n, t in self._contacts.items() if t is not None}
        if minutes <= 0 or not opened:
            return
        for relay, on in self._relays.items():
            if on and self._kinds.get(relay) in HVAC_KINDS:
                contact = min(opened, key=lambda name: opened[name])  # the longest open
                why = f"{relay} ({self._kinds[relay]}) on while {contact} is open"
                found[("window_open", relay)] = (why, minutes * 60)

    def _short_cycling(self, now: float, found: dict[tuple[str, str], tuple[str, float]]) -> None:
        c = self.config
        window = c.short_cycle_window_minutes * 60
        if c.short_cycle_starts <= 0 or window <= 0:
            return
        for relay, starts in self._starts.items():
            while starts and starts[0] <= now - window:
                starts.popleft()
            if len(starts) > c.short_cycle_starts:
                why = (f"{relay}: {len(starts)} starts in {c.short_cycle_window_minutes:g} min, "
                       f"at most {c.short_cycle_starts}")  # fmt: skip
                found[("short_cycling", relay)] = (why, 0.0)

    def _disagreement(self, now: float, found: dict[tuple[str, str], tuple[str, float]]) -> None:
        c = self.config
        if c.disagree_minutes <= 0:
            return
        for quantity, limit in c.disagree.items():
            fresh = sorted(
                (device, v) for device, (v, t) in self._latest.get(quantity, {}).items()
                if now - t <= c.stale_seconds
            )  # fmt: skip
            for i, (a, va) in enumerate(fresh):
                for b, vb in fresh[i + 1 :]:
                    if abs(va - vb) > limit:
                        why = f"{quantity}: {a} {va:g} against {b} {vb:g} (more than {limit:g})"
                        found[("sensors_disagree", f"{a}/{b}.{quantity}")] = (
                            why, c.disagree_minutes * 60,
                        )  # fmt: skip

    def _meters(self, now: float, found: dict[tuple[str, str], tuple[str, float]]) -> None:
        c = self.config
        if c.meter_minutes <= 0:
            return
        for relay, (watts, when) in self._power.items():
            if now - when > c.stale_seconds or relay not in self._relays:
                continue
            on = self._relays[relay]
            if on and watts < c.meter_on_min_w:
                why = f"{relay} is on but its circuit draws {watts:g} W"
            elif not on and watts > c.meter_off_max_w:
                why = f"{relay} is off but its circuit draws {watts:g} W"
            else:
                continue
            found[("meter_mismatch", relay)] = (why, c.meter_minutes * 60)

    def _settle(
        self, found: dict[tuple[str, str], tuple[str, float]], now: float, wall: float
    ) -> list[Event]:
        events: list[Event] = []
        for key in list(self._conditions) + [k for k in found if k not in self._conditions]:
            cond = self._conditions.setdefault(key, _Condition())
            fault, subject = key
            if key in found:
                reason, hold = found[key]
                if cond.since is None:
                    cond.since = now
                if not cond.active and now - cond.since >= hold:
                    cond.active, cond.reason = True, reason
                    events.append(Event("fault", f"{fault}:{subject}", "detected", reason, wall))
            else:
                if cond.active:
                    why = f"{fault} ended: {cond.reason}"
                    events.append(Event("fault", f"{fault}:{subject}", "cleared", why, wall))
                del self._conditions[key]
        return events
