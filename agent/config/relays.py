"""A relay's configuration ([[relays]] in docs/config.md) and the checks of a relay list as a
whole (names, pins, interlock groups); agent.control.relays is the bank that runs them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from agent.common.suggest import hint

KINDS = ("light", "heat", "cool", "fan", "ventilation", "generic")
POWER_ON = ("off", "on", "restore")
SAFE = ("off", "on")


@dataclass(frozen=True)
class RelayConfig:
    name: str
    pin: int  # BCM GPIO number
    active_high: bool = False  # most relay boards switch on when the pin is pulled low
    kind: str = "generic"
    rated_power_w: float = 0.0
    power_on: str = "off"  # "restore": as it was when the state was last saved
    safe_state: str = "off"
    pulse: Optional[float] = None  # seconds: switched on, it goes off by itself after this
    interlock: Optional[str] = None  # group: at most one member on, ever
    interlock_dead_time: float = 0.0  # seconds between one member off and another on
    min_on: float = 0.0
    min_off: float = 0.0
    max_switches_per_hour: int = 0  # 0: no limit

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name: {self.name!r} must be a non-empty string")
        if isinstance(self.pin, bool) or not isinstance(self.pin, int) or self.pin < 0:
            raise ValueError(f"pin: {self.pin!r} is not a BCM GPIO number")
        for field, allowed in (("kind", KINDS), ("power_on", POWER_ON), ("safe_state", SAFE)):
            if (value := getattr(self, field)) not in allowed:
                near = hint(value, allowed) if isinstance(value, str) else ""
                raise ValueError(f"{field}: {value!r} is not one of {', '.join(allowed)}{near}")
        for field in ("rated_power_w", "interlock_dead_time", "min_on", "min_off"):
            if (number := finite_number(getattr(self, field))) is None or number < 0:
                raise ValueError(f"{field}: {getattr(self, field)!r} must be a number >= 0")
        if self.pulse is not None and ((pulse := finite_number(self.pulse)) is None or pulse <= 0):
            raise ValueError(f"pulse: {self.pulse!r} must be a number of seconds > 0")
        if self.pulse is not None and self.pulse < self.min_on:
            raise ValueError(f"pulse: {self.pulse:g} s is shorter than min_on {self.min_on:g} s")
        if self.interlock is not None and (
            not isinstance(self.interlock, str) or not self.interlock.strip()
        ):
            raise ValueError(f"interlock: {self.interlock!r} must be a non-empty group name")
        limit = self.max_switches_per_hour
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"max_switches_per_hour: {limit!r} must be a whole number >= 0")
        if limit == 1:  # an on is only allowed if its off fits in the hour too
            raise ValueError("max_switches_per_hour: 1 leaves no room to switch on and off again")


def validate_relays(configs: Iterable[RelayConfig]) -> None:
    """Checks a relay list as a whole (each RelayConfig checks its own fields)."""
    names: set[str] = set()
    pins: dict[int, str] = {}
    safe_on: dict[str, str] = {}
    power_on: dict[str, str] = {}
    for c in configs:
        c.validate()
        if c.name in names:
            raise ValueError(f"relay name {c.name!r} is used twice")
        names.add(c.name)
        if c.pin in pins:
            raise ValueError(f"pin {c.pin} is used by both {pins[c.pin]!r} and {c.name!r}")
        pins[c.pin] = c.name
        if c.interlock is None:
            continue
        # Both would be demanded at once with no way to meet them without breaking the group.
        for seen, field in ((safe_on, "safe_state"), (power_on, "power_on")):
            if getattr(c, field) != "on":
                continue
            if c.interlock in seen:
                raise ValueError(
                    f"{field}: {seen[c.interlock]!r} and {c.name!r} are both 'on' "
                    f"in interlock group {c.interlock!r}"
                )
            seen[c.interlock] = c.name


def finite_number(value: object) -> Optional[float]:
    """A finite number (from a config or read back from the store), or None if it is not one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
