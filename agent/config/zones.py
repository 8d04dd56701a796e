"""`[[zones]]`: one thermostat zone (its sensor, setpoints per mode, heat and cool stages, bands,
failsafe), checked at load; agent.control.thermostat regulates it."""

from __future__ import annotations

import math
from dataclasses import dataclass

FAILSAFES = ("off", "frost")


@dataclass(frozen=True)
class ZoneConfig:
    name: str
    sensor: str  # the device whose "temperature" this zone regulates on
    comfort: float  # °C, heating setpoints per mode
    eco: float
    boost: float
    heat_stages: tuple[str, ...] = ()  # relay names, first stage first
    cool_stages: tuple[str, ...] = ()
    frost: float = 7.0
    cool_offset: float = 2.0  # K: cooling regulates on the heating setpoint + this
    # In eco the room is empty: cool only when it gets really warm (eco 17 + 8 = 25 °C), rather
    # than spending energy to hold 19 °C in an empty room in summer.
    eco_cool_offset: float = 8.0
    deadband: float = 0.5  # K
    stage_offset: float = 1.0  # K between one stage's band and the next
    boost_minutes: float = 60.0
    manual_minutes: float = 120.0
    vacancy_setback_minutes: float = 30.0  # vacant this long during comfort: eco instead
    stale_after: float = 300.0  # s: an older temperature is not regulated on
    plausible_min: float = -10.0
    plausible_max: float = 50.0
    failsafe: str = "off"  # "off": everything off; "frost": heat 1 at failsafe_duty, cool off
    failsafe_duty: float = 0.2
    failsafe_period_minutes: float = 20.0

    def __post_init__(self) -> None:
        for field in ("name", "sensor"):
            if not isinstance(getattr(self, field), str) or not getattr(self, field):
                raise ValueError(f"{field}: must be a non-empty string")
        relays: list[str] = []
        for field in ("heat_stages", "cool_stages"):
            stages = getattr(self, field)
            if isinstance(stages, str) or not all(isinstance(s, str) and s for s in stages):
                raise ValueError(f"{field}: must be a list of relay names, got {stages!r}")
            object.__setattr__(self, field, tuple(stages))  # a loader may hand over a list
            relays.extend(stages)
        if not relays:
            raise ValueError("heat_stages: a zone needs at least one heat or cool stage relay")
        for relay in relays:
            if relays.count(relay) > 1:
                raise ValueError(f"heat_stages/cool_stages: relay {relay!r} is named twice")
        for field in (*_POSITIVE, *_NON_NEGATIVE, *_SETPOINTS, "plausible_min", "plausible_max"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{field}: must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{field}: must be a finite number, got {value!r}")
        for field in _POSITIVE:
            if getattr(self, field) <= 0:
                raise ValueError(f"{field}: must be more than 0, got {getattr(self, field)}")
        for field in _NON_NEGATIVE:
            if getattr(self, field) < 0:
                raise ValueError(f"{field}: must not be negative, got {getattr(self, field)}")
        if self.plausible_min >= self.plausible_max:
            raise ValueError(
                f"plausible_max: must be above plausible_min ({self.plausible_min}), "
                f"got {self.plausible_max}"
            )
        for field in _SETPOINTS:
            if not self.plausible_min <= getattr(self, field) <= self.plausible_max:
                raise ValueError(
                    f"{field}: {getattr(self, field)} °C is outside the plausible range "
                    f"{self.plausible_min:g}..{self.plausible_max:g} °C"
                )
        if self.eco_cool_offset <= self.deadband:
            raise ValueError(f"eco_cool_offset: must be more than the deadband ({self.deadband} K)")
        if self.cool_offset <= self.deadband:
            raise ValueError(
                f"cool_offset: must be more than the deadband ({self.deadband} K) so heating "
                f"and cooling never chase each other, got {self.cool_offset}"
            )
        if self.failsafe not in FAILSAFES:
            raise ValueError(f"failsafe: must be 'off' or 'frost', got {self.failsafe!r}")
        if self.failsafe == "frost" and not self.heat_stages:
            raise ValueError("failsafe: 'frost' needs a heat stage; this zone only cools")
        if not 0 <= self.failsafe_duty <= 1:
            raise ValueError(f"failsafe_duty: must be 0..1, got {self.failsafe_duty}")

    def setpoint(self, mode: str) -> float:
        """The heating setpoint of one of the fixed modes: comfort, eco, boost, frost."""
        return float(getattr(self, mode))


_SETPOINTS = ("comfort", "eco", "boost", "frost")
_POSITIVE = (
    "cool_offset",
    "eco_cool_offset",
    "deadband",
    "stage_offset",
    "boost_minutes",
    "manual_minutes",
    "stale_after",
    "failsafe_period_minutes",
)
_NON_NEGATIVE = ("vacancy_setback_minutes", "failsafe_duty")
