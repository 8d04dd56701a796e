"""`[[scenes]]`: a named set of targets (lights, zones, ventilation) and the values they take,
checked at load; agent.control.scenes applies them."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Optional

LIGHT_VALUES = ("on", "off", "auto")
VENTILATION_VALUES = ("boost", "auto")
KINDS = ("lights", "zone", "ventilation")


@dataclass(frozen=True)
class SceneConfig:
    name: str
    targets: Mapping[str, str] = field(default_factory=dict)  # "lights:chamber" -> "on"
    minutes: Optional[float] = None

    def __post_init__(self) -> None:
        # A read-only copy: the scene cannot change under a manager after it was checked.
        object.__setattr__(self, "targets", MappingProxyType(dict(self.targets)))
        self.validate()

    def validate(self) -> None:
        """The scene's own shape; whether its targets exist is SceneManager.check()."""
        if not self.name:
            raise ValueError("name: must not be empty")
        if not self.targets:
            raise ValueError("targets: a scene needs at least one target")
        for target, value in self.targets.items():
            kind, _, name = target.partition(":")
            if kind not in KINDS or not name:
                raise ValueError(
                    f"targets.{target}: must be 'KIND:NAME' with KIND one of {', '.join(KINDS)}"
                )
            if not isinstance(value, str) or not value:
                raise ValueError(f"targets.{target}: value must be a non-empty string")
        if self.minutes is not None and not (math.isfinite(self.minutes) and self.minutes > 0):
            raise ValueError(f"minutes: must be a positive number, got {self.minutes!r}")


def check_targets(
    scene: SceneConfig,
    lights: Collection[str],
    zones: Collection[str],
    ventilations: Collection[str],
    zone_modes: Optional[Collection[str]] = None,
) -> None:
    """Raises ValueError naming the first target that is unknown or has a bad value: what the
    config checks at load (names only, no controls needed) and a scene checks before applying."""
    for target, value in scene.targets.items():
        kind, _, name = target.partition(":")
        known: Collection[str]
        allowed: Optional[Collection[str]]
        if kind == "lights":
            known, allowed = lights, LIGHT_VALUES
        elif kind == "ventilation":
            known, allowed = ventilations, VENTILATION_VALUES
        else:
            known, allowed = zones, zone_modes
        if name not in known:
            raise ValueError(f"scene {scene.name!r}: targets.{target}: no {kind} {name!r}")
        if allowed is not None and value not in allowed:
            raise ValueError(
                f"scene {scene.name!r}: targets.{target}: {value!r} is not one of "
                f"{', '.join(allowed)}"
            )
