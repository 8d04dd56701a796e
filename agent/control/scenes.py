"""Scenes: several settings applied together, e.g. "meeting" = lights on, comfort, boost.

A scene is all or nothing: every target is checked before any is applied, so a typo in one
target cannot leave a room half in the scene. Targets are "kind:name" with kind one of lights,
zone, ventilation; values are "on"/"off"/"auto" for lights, "boost"/"auto" for ventilation, and
a mode for a zone. The scene's minutes (None: each control's own default) bound the manual
lights, the boost and the zone mode alike.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Optional, Protocol

from agent.common.events import Event
from agent.config.scenes import SceneConfig, check_targets
from agent.control.lights import LightControl
from agent.control.types import Clock
from agent.control.ventilation import VentilationControl


class Zone(Protocol):
    """What a scene needs of a thermostat zone (agent/control/thermostat.py provides it)."""

    def set_mode(self, mode: str, reason: str, minutes: Optional[float] = None) -> list[Event]: ...


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
