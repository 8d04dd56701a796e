"""`[[ventilation]]`: one ventilation unit (its one or two stage relays, CO2 and VOC thresholds,
failsafe), checked at load; agent.control.ventilation runs it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

FAILSAFES = ("on", "off")


@dataclass(frozen=True)
class VentilationConfig:
    name: str
    relays: Union[str, tuple[str, ...]]  # one relay, or (low, high) for two stages
    co2_sensor: str
    co2_on: float = 1000.0  # ppm: stage 1 above it
    co2_off: float = 800.0  # ppm: stage 1 ends below it
    co2_high: Optional[float] = None  # ppm: stage 2 above it, ends below it - (on - off)
    voc_sensor: Optional[str] = None
    voc_on: float = 250.0  # VOC index: stage 1 above it
    voc_off: float = 150.0
    stale_after: float = 300.0  # s
    failsafe: str = "on"  # what a stale sensor asks for
    min_run_minutes: float = 10.0
    boost_minutes: float = 30.0  # a boost() without a duration

    def __post_init__(self) -> None:
        relays = (self.relays,) if isinstance(self.relays, str) else tuple(self.relays)
        object.__setattr__(self, "relays", relays)
        self.validate()

    @property
    def stages(self) -> tuple[str, ...]:
        """The relays, one per stage: (fan,) or (low, high)."""
        return (self.relays,) if isinstance(self.relays, str) else self.relays

    def validate(self) -> None:
        if not self.name:
            raise ValueError("name: must not be empty")
        stages = self.stages
        if len(stages) not in (1, 2) or not all(stages):
            raise ValueError(f"relays: one relay, or two (low, high), got {list(stages)}")
        if len(set(stages)) != len(stages):
            raise ValueError(f"relays: low and high are the same relay {stages[0]!r}")
        if not self.co2_sensor:
            raise ValueError("co2_sensor: must name a device")
        for field in ("co2_on", "co2_off", "voc_on", "voc_off", "stale_after", "boost_minutes"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{field}: must be a positive number, got {value!r}")
        if not (math.isfinite(self.min_run_minutes) and self.min_run_minutes >= 0):
            raise ValueError(f"min_run_minutes: must be 0 or more, got {self.min_run_minutes!r}")
        if self.co2_off >= self.co2_on:
            raise ValueError(
                f"co2_off: must be below co2_on ({self.co2_on:g}), got {self.co2_off:g}"
            )
        if self.voc_off >= self.voc_on:
            raise ValueError(
                f"voc_off: must be below voc_on ({self.voc_on:g}), got {self.voc_off:g}"
            )
        if self.co2_high is not None and self.co2_high <= self.co2_on:
            raise ValueError(
                f"co2_high: must be above co2_on ({self.co2_on:g}), got {self.co2_high:g}"
            )
        if len(stages) == 2 and self.co2_high is None:
            raise ValueError("co2_high: two relays (low, high) need the level for stage 2")
        if len(stages) == 1 and self.co2_high is not None:
            raise ValueError("co2_high: stage 2 needs two relays (low, high)")
        if self.failsafe not in FAILSAFES:
            raise ValueError(f"failsafe: must be 'on' or 'off', got {self.failsafe!r}")

    @property
    def co2_high_off(self) -> Optional[float]:
        """Stage 2 ends below this: co2_high less the stage-1 hysteresis width."""
        if self.co2_high is None:
            return None
        return self.co2_high - (self.co2_on - self.co2_off)
