"""`[[lights]]`: one light group (its relays, occupancy sources, daylight and switch), checked at
load; agent.control.lights runs it."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class LightConfig:
    name: str
    relays: tuple[str, ...]
    occupancy: tuple[str, ...] = ()  # motion inputs and presence sources; () = manual only
    vacancy_minutes: float = 15.0
    daylight_sensor: Optional[str] = None  # a device giving "illuminance"
    daylight_lux: float = 500.0  # above it, occupancy does not switch the lights on
    daylight_hysteresis: float = 100.0  # held off until it falls below daylight_lux - this
    switch: Optional[str] = None  # a wall button or switch input
    override_minutes: float = 120.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "relays", tuple(self.relays))
        object.__setattr__(self, "occupancy", tuple(self.occupancy))
        self.validate()

    def validate(self) -> None:
        if not self.name:
            raise ValueError("name: must not be empty")
        if not self.relays:
            raise ValueError("relays: a light group needs at least one relay")
        if len(set(self.relays)) != len(self.relays):
            raise ValueError(f"relays: a relay is listed twice in {list(self.relays)}")
        if len(set(self.occupancy)) != len(self.occupancy):
            raise ValueError(f"occupancy: a source is listed twice in {list(self.occupancy)}")
        _positive("vacancy_minutes", self.vacancy_minutes)
        _positive("override_minutes", self.override_minutes)
        _positive("daylight_lux", self.daylight_lux)
        if not 0 <= self.daylight_hysteresis < self.daylight_lux:
            raise ValueError(
                f"daylight_hysteresis: must be at least 0 and below daylight_lux "
                f"({self.daylight_lux:g}), got {self.daylight_hysteresis:g}"
            )


def check_light_references(
    config: LightConfig,
    input_kinds: Mapping[str, str],
    presence_sources: Collection[str] = (),
) -> None:
    """For the config loader: the names a light group uses must exist and be the right kind.
    input_kinds maps each input's name to its kind ("motion", "button", ...)."""
    for i, source in enumerate(config.occupancy):
        if input_kinds.get(source) != "motion" and source not in presence_sources:
            kind = input_kinds.get(source)
            what = f"a {kind} input" if kind else "not an input or a presence source"
            raise ValueError(
                f"occupancy[{i}]: {source!r} is {what}; need a motion input or a BLE presence group"
            )
    if config.switch is not None and input_kinds.get(config.switch) not in ("button", "switch"):
        kind = input_kinds.get(config.switch)
        what = f"a {kind} input" if kind else "not an input"
        raise ValueError(f"switch: {config.switch!r} is {what}; need a button or switch")


def _positive(field: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{field}: must be a positive number, got {value!r}")
