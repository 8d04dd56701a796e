"""Scenes: several settings applied together, e.g. "meeting" = lights on, comfort, boost.

A scene is all or nothing: every target is checked before any is applied, so a typo in one
target cannot leave a room half in the scene. Targets are "kind:name" with kind one of lights,
zone, ventilation; values are "on"/"off"/"auto" for lights, "boost"/"auto" for ventilation, and
a mode for a zone. The scene's minutes (None: each control's own default) bound the manual
lights, the boost and the zone mode alike.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Optional, Protocol

from agent.common.events import Event
from agent.control.lights import LightControl
from agent.control.types import Clock
from agent.control.ventilation import VentilationControl

LIGHT_VALUES = ("on", "off", "auto")
VENTILATION_VALUES = ("boost", "auto")
KINDS = ("lights", "zone", "ventilation")


class Zone(Protocol):
    """What a scene needs of a thermostat zone (agent/control/thermostat.py provides it)."""

    def set_mode(self, mode: str, reason: str, minutes: Optional[float] = None) -> list[Event]: ...


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


class SceneManager:
    """zone_modes: the modes a zone accepts, so a scene naming another is refused up front;
    None leaves that to the zone, which may then refuse after other targets were applied."""

    def __init__(
        self,
        lights: Mapping[str, LightControl],
        zones: Mapping[str, Zone],
        ventilations: Mapping[str, VentilationControl],
        clock: Clock,
        zone_modes: Optional[Collection[str]] = None,
    ) -> None:
        self.lights, self.zones, self.ventilations = lights, zones, ventilations
        self.clock, self.zone_modes = clock, zone_modes

    def check(self, scene: SceneConfig) -> None:
        """Raises ValueError naming the first target that is unknown or has a bad value."""
        check_targets(scene, self.lights, self.zones, self.ventilations, self.zone_modes)

    def apply(self, scene: SceneConfig, source: str = "command") -> list[Event]:
        """Checks every target, then applies them all. Returns the scene's Event (kind
        "scene") followed by the Events of the controls it set."""
        self.check(scene)
        reason = f"scene {scene.name} ({source})"
        # Zones first: with no zone_modes they are the only targets that can still refuse,
        # and a refusal then leaves the lights and ventilation untouched.
        ordered = sorted(scene.targets.items(), key=lambda t: not t[0].startswith("zone:"))
        events: list[Event] = []
        for target, value in ordered:
            kind, _, name = target.partition(":")
            if kind == "zone":
                events.extend(self.zones[name].set_mode(value, reason, scene.minutes))
            elif kind == "lights":
                light = self.lights[name]
                if value == "auto":
                    events.extend(light.resume_automatic(reason))
                else:
                    events.extend(light.command(value == "on", scene.minutes, reason))
            else:
                fan = self.ventilations[name]
                if value == "auto":
                    events.extend(fan.cancel_boost(reason))
                else:
                    events.extend(fan.boost(scene.minutes, reason))
        summary = ", ".join(f"{t} {v}" for t, v in scene.targets.items())
        applied = Event("scene", scene.name, "applied", f"{reason}: {summary}", self.clock.time())
        return [applied, *events]
