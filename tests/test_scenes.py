"""Scenes are all or nothing: a bad target means nothing at all is applied."""

from __future__ import annotations

from typing import Optional

import pytest

from agent.common.events import Event
from agent.config.lights import LightConfig
from agent.config.scenes import SceneConfig
from agent.config.ventilation import VentilationConfig
from agent.control.lights import LightControl
from agent.control.scenes import SceneManager
from agent.control.ventilation import VentilationControl
from tests.clocks import FakeClock

MIN = 60.0


class FakeZone:
    """Stands in for a thermostat zone: records the modes it was given."""

    def __init__(self, clock: FakeClock, refuse: Optional[str] = None) -> None:
        self.clock, self.refuse = clock, refuse
        self.calls: list[tuple[str, str, Optional[float]]] = []

    def set_mode(self, mode: str, reason: str, minutes: Optional[float] = None) -> list[Event]:
        if mode == self.refuse:
            raise ValueError(f"mode: {mode} refused")
        self.calls.append((mode, reason, minutes))
        return [Event("mode", "chamber", mode, reason, self.clock.time())]


class Room:
    def __init__(self, zone_modes: Optional[tuple[str, ...]] = None) -> None:
        self.clock = FakeClock()
        self.light = LightControl(LightConfig("chamber", ("lights",)), self.clock)
        self.fan = VentilationControl(VentilationConfig("chamber", "fan", "scd41"), self.clock)
        self.zone = FakeZone(self.clock)
        self.scenes = SceneManager(
            {"chamber": self.light},
            {"chamber": self.zone},
            {"chamber": self.fan},
            self.clock,
            zone_modes=zone_modes,
        )

    def untouched(self) -> bool:
        return self.light.override is None and self.fan.boost_until is None and not self.zone.calls


MEETING = {"lights:chamber": "on", "zone:chamber": "comfort", "ventilation:chamber": "boost"}


def test_a_scene_applies_every_target() -> None:
    room = Room()
    events = room.scenes.apply(SceneConfig("meeting", MEETING), source="wall panel")
    now = room.clock.monotonic()
    reason = "scene meeting (wall panel)"
    assert events[0] == Event(
        "scene",
        "meeting",
        "applied",
        f"{reason}: lights:chamber on, zone:chamber comfort, ventilation:chamber boost",
        room.clock.time(),
    )
    assert sorted((e.kind, e.subject, e.state) for e in events[1:]) == [
        ("mode", "chamber", "comfort"),
        ("mode", "lights:chamber", "manual_on"),
        ("mode", "ventilation:chamber", "boost"),
    ]
    assert room.zone.calls == [("comfort", reason, None)]
    assert room.light.override is not None and room.light.override.on
    assert room.light.override.until == now + 120 * MIN  # the group's override_minutes
    assert room.fan.boost_until == now + 30 * MIN  # the fan's boost_minutes
    assert room.light.update()[0][0].on


def test_scene_minutes_bound_every_target() -> None:
    room = Room()
    room.scenes.apply(SceneConfig("meeting", MEETING, minutes=45))
    now = room.clock.monotonic()
    assert room.zone.calls[0][2] == 45
    assert room.light.override is not None and room.light.override.until == now + 45 * MIN
    assert room.fan.boost_until == now + 45 * MIN


def test_auto_hands_back_to_the_rules() -> None:
    room = Room()
    room.scenes.apply(SceneConfig("meeting", MEETING))
    room.scenes.apply(
        SceneConfig("done", {"lights:chamber": "auto", "ventilation:chamber": "auto"})
    )
    assert room.light.override is None and room.fan.boost_until is None


@pytest.mark.parametrize(
    ("bad_target", "value", "message"),
    [
        ("lights:lobby", "on", "targets.lights:lobby: no lights 'lobby'"),
        ("zone:lobby", "eco", "targets.zone:lobby: no zone 'lobby'"),
        ("ventilation:lobby", "boost", "targets.ventilation:lobby: no ventilation 'lobby'"),
        ("lights:chamber", "dim", "targets.lights:chamber: 'dim' is not one of on, off, auto"),
        ("ventilation:chamber", "on", "targets.ventilation:chamber: 'on' is not one of boost"),
    ],
)
def test_one_bad_target_applies_nothing(bad_target: str, value: str, message: str) -> None:
    room = Room()
    # The bad target last, so a manager applying as it checks would have changed the rest.
    targets = {k: v for k, v in MEETING.items() if k != bad_target}
    targets[bad_target] = value
    scene = SceneConfig("meeting", targets)
    assert list(scene.targets)[-1] == bad_target
    with pytest.raises(ValueError, match=f"scene 'meeting': {message}"):
        room.scenes.apply(scene)
    assert room.untouched()


def test_zone_modes_are_checked_up_front_when_given() -> None:
    room = Room(zone_modes=("comfort", "eco", "off"))
    scene = SceneConfig("meeting", {**MEETING, "zone:chamber": "sauna"})
    with pytest.raises(ValueError, match="'sauna' is not one of comfort, eco, off"):
        room.scenes.apply(scene)
    assert room.untouched()


def test_a_zone_refusing_leaves_lights_and_fan_alone() -> None:
    # Without zone_modes a zone can still refuse; zones go first so nothing else has moved.
    room = Room()
    room.zone.refuse = "sauna"
    scene = SceneConfig(
        "meeting", {"lights:chamber": "on", "ventilation:chamber": "boost", "zone:chamber": "sauna"}
    )
    with pytest.raises(ValueError, match="sauna refused"):
        room.scenes.apply(scene)
    assert room.untouched()


def test_check_alone_changes_nothing() -> None:
    room = Room()
    room.scenes.check(SceneConfig("meeting", MEETING))
    assert room.untouched()


@pytest.mark.parametrize(
    ("targets", "minutes", "message"),
    [
        ({}, None, "targets: a scene needs at least one target"),
        ({"heater:chamber": "on"}, None, "targets.heater:chamber: must be 'KIND:NAME'"),
        ({"lights": "on"}, None, "targets.lights: must be 'KIND:NAME'"),
        ({"lights:": "on"}, None, "targets.lights:: must be 'KIND:NAME'"),
        ({"lights:chamber": ""}, None, "targets.lights:chamber: value must be a non-empty"),
        ({"lights:chamber": "on"}, 0, "minutes: must be a positive number"),
    ],
)
def test_scene_config_validation(
    targets: dict[str, str], minutes: Optional[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SceneConfig("s", targets, minutes)


def test_scene_targets_cannot_change_after_the_check() -> None:
    source = dict(MEETING)
    scene = SceneConfig("meeting", source)
    source["lights:lobby"] = "on"  # the caller's dict changing does not reach the scene
    assert "lights:lobby" not in scene.targets
    with pytest.raises(TypeError):
        scene.targets["lights:lobby"] = "on"  # type: ignore[index]
