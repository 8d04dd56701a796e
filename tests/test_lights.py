"""One light group on a FakeClock: occupancy, vacancy, daylight, the wall switch.

No network is involved anywhere here: the switch and the rules are all local to the node.
"""

from __future__ import annotations

from typing import Optional

import pytest

from agent.common.events import Event
from agent.config.lights import LightConfig, check_light_references
from agent.control.lights import LightControl
from agent.control.types import Want
from tests.clocks import FakeClock

MIN = 60.0


def make(**overrides: object) -> tuple[LightControl, FakeClock]:
    fields: dict[str, object] = {
        "name": "chamber",
        "relays": ("lights_a", "lights_b"),
        "occupancy": ("pir",),
        "daylight_sensor": "window_lux",
        "switch": "wall",
    }
    fields.update(overrides)
    clock = FakeClock()
    return LightControl(LightConfig(**fields), clock), clock  # type: ignore[arg-type]


def is_on(wants: list[Want]) -> bool:
    """Both relays of the group always agree; says which way."""
    assert [w.relay for w in wants] == ["lights_a", "lights_b"]
    assert wants[0].on == wants[1].on and wants[0].reason == wants[1].reason
    return wants[0].on


def press(clock: FakeClock, state: str = "pressed", subject: str = "wall") -> Event:
    return Event("input", subject, state, "GPIO 17 went low", clock.time())


def test_on_by_motion_and_off_after_exactly_the_vacancy_time() -> None:
    lights, clock = make()
    wants, _ = lights.update()
    assert not is_on(wants)
    assert "vacant" in wants[0].reason
    motion = clock.monotonic()
    wants, events = lights.update(motion_at=motion)
    assert is_on(wants) and events == []
    assert "motion 0 s ago" in wants[0].reason
    clock.advance(15 * MIN - 1)
    assert is_on(lights.update(motion_at=motion)[0])
    clock.advance(1)  # 15 min since the last motion, to the second
    wants, _ = lights.update(motion_at=motion)
    assert not is_on(wants)
    assert wants[0].reason == "lights chamber: vacant (motion last 15 min ago)"


def test_later_motion_restarts_the_vacancy_time() -> None:
    lights, clock = make(vacancy_minutes=5)
    first = clock.monotonic()
    lights.update(motion_at=first)
    clock.advance(4 * MIN)
    second = clock.monotonic()
    clock.advance(4 * MIN)  # 8 min after the first motion, 4 after the second
    assert is_on(lights.update(motion_at=second)[0])
    clock.advance(1 * MIN)
    assert not is_on(lights.update(motion_at=second)[0])


def test_presence_keeps_the_lights_on_without_motion() -> None:
    lights, clock = make()
    wants, _ = lights.update(occupied=True)
    assert is_on(wants) and "presence detected" in wants[0].reason
    clock.advance(60 * MIN)
    assert is_on(lights.update(occupied=True)[0])
    wants, _ = lights.update(occupied=False)
    assert not is_on(wants)
    assert wants[0].reason == "lights chamber: vacant (motion none seen, no presence)"


def test_daylight_holds_off_with_hysteresis() -> None:
    lights, clock = make()  # on above 500 lx, released below 500 - 100 = 400 lx

    def occupied_at(lux: float) -> list[Want]:
        clock.advance(10)
        return lights.update(motion_at=clock.monotonic(), lux=lux)[0]

    wants = occupied_at(520)
    assert not is_on(wants)
    assert "held off by daylight: 520 lx from window_lux" in wants[0].reason
    assert not is_on(occupied_at(450))  # inside the band: still held
    assert not is_on(occupied_at(400))  # 400 is not below 400
    assert is_on(occupied_at(399))


def test_below_the_threshold_with_no_earlier_judgement_is_dark() -> None:
    lights, clock = make()
    assert is_on(lights.update(motion_at=clock.monotonic(), lux=500)[0])  # not above 500


def test_daylight_does_not_switch_lights_off_once_on() -> None:
    lights, clock = make()
    motion = clock.monotonic()
    assert is_on(lights.update(motion_at=motion, lux=300)[0])
    clock.advance(30)
    # the lamps light the sensor too: a bright reading now says nothing about daylight
    assert is_on(lights.update(motion_at=motion, lux=900, lux_at=clock.monotonic())[0])
    clock.advance(15 * MIN)
    assert not is_on(lights.update(motion_at=motion, lux=900)[0])  # vacancy
    # someone comes back before a reading taken with the lamps off: the lamp-lit one is ignored
    clock.advance(20)
    lamp_lit_at = clock.monotonic() - 30
    assert is_on(lights.update(motion_at=clock.monotonic(), lux=900, lux_at=lamp_lit_at)[0])


def test_a_reading_taken_after_switch_off_counts() -> None:
    lights, clock = make()
    lights.update(motion_at=clock.monotonic(), lux=300)
    clock.advance(15 * MIN)
    assert not is_on(lights.update(lux=300)[0])
    clock.advance(10)
    lights.update(lux=800)  # the lamps are off: this is daylight
    clock.advance(10)
    assert not is_on(lights.update(motion_at=clock.monotonic())[0])


def test_stale_lux_is_ignored() -> None:
    lights, clock = make()
    taken = clock.monotonic()
    assert not is_on(lights.update(lux=900, lux_at=taken)[0])
    clock.advance(5 * MIN)  # exactly 5 min old: still believed
    assert not is_on(lights.update(motion_at=clock.monotonic(), lux=900, lux_at=taken)[0])
    clock.advance(1)
    wants, _ = lights.update(motion_at=clock.monotonic(), lux=900, lux_at=taken)
    assert is_on(wants)
    assert "daylight reading from window_lux 5 min ago, ignored" in wants[0].reason


def test_wall_button_overrides_then_hands_back() -> None:
    lights, clock = make()  # override_minutes 120
    assert not is_on(lights.update()[0])
    wants, events = lights.update(inputs=[press(clock)])
    assert is_on(wants)
    assert events == [
        Event("mode", "lights:chamber", "manual_on", "wall button wall: lights on for 120 min",
              clock.time()),
    ]  # fmt: skip
    assert "manual on by wall button wall" in wants[0].reason
    clock.advance(120 * MIN - 1)
    assert is_on(lights.update()[0])
    clock.advance(1)
    wants, events = lights.update()
    assert not is_on(wants)  # vacant: automatic says off
    assert [(e.state, e.reason) for e in events] == [
        ("automatic", "manual override by wall button wall ended")
    ]


def test_wall_button_turns_occupied_lights_off_for_a_while() -> None:
    lights, clock = make(override_minutes=30)
    assert is_on(lights.update(occupied=True)[0])
    wants, events = lights.update(occupied=True, inputs=[press(clock)])
    assert not is_on(wants) and events[0].state == "manual_off"
    clock.advance(30 * MIN)
    assert is_on(lights.update(occupied=True)[0])


def test_button_release_and_other_inputs_do_nothing() -> None:
    lights, clock = make()
    events = [press(clock, "released"), press(clock, "pressed", subject="other")]
    wants, out = lights.update(inputs=events)
    assert not is_on(wants) and out == [] and lights.override is None


def test_a_maintained_switch_toggles_on_every_flip() -> None:
    lights, clock = make()
    assert is_on(lights.update(inputs=[press(clock, "on")])[0])
    assert not is_on(lights.update(inputs=[press(clock, "off")])[0])
    # the automatic rules switched on under a switch left "off": the next flip turns them off
    lights.resume_automatic()
    assert is_on(lights.update(occupied=True)[0])
    wants, events = lights.update(occupied=True, inputs=[press(clock, "on")])
    assert not is_on(wants)
    assert events[0].reason == "wall switch wall: lights off for 120 min"


def test_two_presses_in_one_poll_cancel_out() -> None:
    lights, clock = make()
    wants, events = lights.update(inputs=[press(clock), press(clock)])
    assert not is_on(wants)
    assert [e.state for e in events] == ["manual_on", "manual_off"]


def test_command_and_resume() -> None:
    lights, clock = make()
    assert [e.state for e in lights.command(True, 5, reason="mqtt")] == ["manual_on"]
    wants, _ = lights.update()
    assert is_on(wants) and "manual on by mqtt (5 min left)" in wants[0].reason
    clock.advance(5 * MIN)
    assert not is_on(lights.update()[0])
    lights.command(True)
    assert lights.override is not None
    assert lights.override.until == clock.monotonic() + 120 * MIN
    assert [e.state for e in lights.resume_automatic()] == ["automatic"]
    assert lights.resume_automatic() == []
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="minutes: must be a positive number"):
            lights.command(True, bad)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "name: must not be empty"),
        ({"relays": ()}, "relays: a light group needs at least one relay"),
        ({"relays": ("a", "a")}, "relays: a relay is listed twice"),
        ({"occupancy": ("pir", "pir")}, "occupancy: a source is listed twice"),
        ({"vacancy_minutes": 0}, "vacancy_minutes: must be a positive number"),
        ({"override_minutes": -5}, "override_minutes: must be a positive number"),
        ({"daylight_lux": 0}, "daylight_lux: must be a positive number"),
        ({"daylight_hysteresis": 500}, "daylight_hysteresis: must be at least 0 and below"),
        ({"daylight_hysteresis": -1}, "daylight_hysteresis: must be at least 0 and below"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**overrides)


@pytest.mark.parametrize(
    ("occupancy", "switch", "message"),
    [
        (("pir", "ble"), "wall", None),
        (("wall",), None, r"occupancy\[0\]: 'wall' is a button input; need a motion input"),
        (("pir", "nope"), None, r"occupancy\[1\]: 'nope' is not an input or a presence source"),
        (("pir",), "pir", "switch: 'pir' is a motion input; need a button or switch"),
        (("pir",), "nope", "switch: 'nope' is not an input; need a button or switch"),
    ],
)
def test_references(
    occupancy: tuple[str, ...], switch: Optional[str], message: Optional[str]
) -> None:
    config = LightConfig("chamber", ("l",), occupancy=occupancy, switch=switch)
    kinds = {"pir": "motion", "wall": "button"}
    if message is None:
        check_light_references(config, kinds, presence_sources={"ble"})
    else:
        with pytest.raises(ValueError, match=message):
            check_light_references(config, kinds, presence_sources={"ble"})
