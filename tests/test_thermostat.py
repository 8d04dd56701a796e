"""Thermostat: hysteresis, stages, cooling, modes that expire, occupancy, the sensor failsafe.

Expected on/off sequences are worked out by hand from the rules: with comfort 21.0 and a 0.5 K
deadband, heat 1 comes on below 20.75 and goes off above 21.25; heat 2 sits 1 K lower
(19.75..20.25); cooling sits 2 K higher (22.75..23.25). Inside a band a stage stays as it was.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.common.events import Event
from agent.config.schedule import WeeklySchedule
from agent.config.zones import ZoneConfig
from agent.control.thermostat import Thermostat
from agent.control.types import Want
from tests.clocks import FakeClock


def zone(**overrides: Any) -> ZoneConfig:
    fields: dict[str, Any] = dict(
        name="chamber", sensor="climate", comfort=21.0, eco=17.0, boost=23.0,
        heat_stages=("heat1",),
    )  # fmt: skip
    fields.update(overrides)
    return ZoneConfig(**fields)


class Room:
    """A thermostat on a fake clock; read() feeds a reading taken just now."""

    def __init__(
        self, config: ZoneConfig, schedule: Optional[WeeklySchedule] = None, wall: float = 0.0
    ) -> None:
        self.clock = FakeClock(wall=wall) if wall else FakeClock()
        self.thermostat = Thermostat(config, schedule, self.clock)
        self.wants: list[Want] = []
        self.events: list[Event] = []

    def update(
        self, temperature: Optional[tuple[float, float]], occupied: Optional[bool] = None
    ) -> dict[str, bool]:
        self.wants, events = self.thermostat.update(temperature, occupied)
        self.events.extend(events)
        return {w.relay: w.on for w in self.wants}

    def read(self, celsius: float, occupied: Optional[bool] = None) -> dict[str, bool]:
        return self.update((celsius, self.clock.monotonic()), occupied)

    def reason(self, relay: str) -> str:
        return next(w.reason for w in self.wants if w.relay == relay)

    def take_events(self, kind: str) -> list[Event]:
        found = [e for e in self.events if e.kind == kind]
        self.events = [e for e in self.events if e.kind != kind]
        return found


def test_one_stage_hysteresis() -> None:
    room = Room(zone())
    sequence = [
        (21.0, False),  # starts off, inside the band: stays off
        (20.8, False),
        (20.75, False),  # not below 20.75
        (20.7, True),
        (21.0, True),  # inside the band: stays on
        (21.25, True),  # not above 21.25
        (21.3, False),
        (21.0, False),
        (20.74, True),
    ]
    for celsius, heat in sequence:
        assert room.read(celsius) == {"heat1": heat}, celsius
        room.clock.advance(10)
    room.read(20.7)
    assert "20.70 °C < 20.75 (comfort 21.0 − 0.25): heat 1 on (sensor climate)" in room.reason(
        "heat1"
    )
    room.read(21.1)
    assert "heat 1 on until above 21.25" in room.reason("heat1")


def test_two_heat_stages() -> None:
    room = Room(zone(heat_stages=("heat1", "heat2")))
    sequence = [
        (19.7, (True, True)),
        (20.0, (True, True)),  # heat 2 holds until above 20.25
        (20.3, (True, False)),
        (19.9, (True, False)),  # heat 2 waits for below 19.75
        (21.3, (False, False)),
        (21.0, (False, False)),
        (19.7, (True, True)),
    ]
    for celsius, (first, second) in sequence:
        assert room.read(celsius) == {"heat1": first, "heat2": second}, celsius
        room.clock.advance(10)
    assert "comfort 21.0 − 1 − 0.25" in room.reason("heat2")


def test_cooling_sits_cool_offset_above_the_heating_setpoint() -> None:
    room = Room(zone(cool_stages=("cool1",)))
    sequence = [
        (22.0, (False, False)),
        (23.2, (False, False)),
        (23.3, (False, True)),  # above 21 + 2 + 0.25
        (23.0, (False, True)),
        (22.75, (False, True)),  # not below 22.75
        (22.7, (False, False)),
        (20.7, (True, False)),
    ]
    for celsius, (heat, cool) in sequence:
        assert room.read(celsius) == {"heat1": heat, "cool1": cool}, celsius
        room.clock.advance(10)
    room.read(23.3)
    assert "23.30 °C > 23.25 (comfort 21.0 + 2 + 0.25): cool 1 on" in room.reason("cool1")


def test_cooling_only_zone_with_two_stages_in_eco() -> None:
    room = Room(zone(heat_stages=(), cool_stages=("cool1", "cool2"), eco_cool_offset=3.0))
    room.thermostat.set_mode("eco", "summer evening")
    # eco 17 + 3: cool 1 band 19.75..20.25, cool 2 one kelvin higher, 20.75..21.25.
    sequence = [
        (20.3, (True, False)),
        (21.3, (True, True)),
        (21.0, (True, True)),
        (20.7, (True, False)),
        (19.7, (False, False)),
    ]
    for celsius, (first, second) in sequence:
        assert room.read(celsius) == {"cool1": first, "cool2": second}, celsius


def test_eco_cools_only_when_really_warm() -> None:
    # An empty room is not cooled to comfort: eco 17 + eco_cool_offset 8 = 25 °C, deadband 0.5:
    # cooling comes on above 25.25 and goes off below 24.75. In comfort, 21 + 2 = 23 °C.
    room = Room(zone(cool_stages=("cool1",)))
    room.thermostat.set_mode("eco", "evening")
    assert room.read(24.0) == {"heat1": False, "cool1": False}
    assert room.read(25.3) == {"heat1": False, "cool1": True}
    assert room.read(24.8) == {"heat1": False, "cool1": True}
    assert room.read(24.7) == {"heat1": False, "cool1": False}
    room.thermostat.set_mode("comfort", "meeting")
    assert room.read(23.3) == {"heat1": False, "cool1": True}


def test_frost_mode_heats_to_frost_and_never_cools() -> None:
    room = Room(zone(cool_stages=("cool1",)))
    room.thermostat.set_mode("frost", "holidays")
    assert room.thermostat.effective_setpoint() == 7.0
    assert room.read(30.0) == {"heat1": False, "cool1": False}
    assert room.read(6.7) == {"heat1": True, "cool1": False}


def test_off_switches_everything_off() -> None:
    room = Room(zone(cool_stages=("cool1",), failsafe="frost"))
    room.read(15.0)
    events = room.thermostat.set_mode("off", "windows open")
    assert [(e.kind, e.state) for e in events] == [("mode", "off")]
    assert room.read(5.0) == {"heat1": False, "cool1": False}
    assert room.reason("heat1") == "zone chamber: off (selected: windows open)"
    assert room.thermostat.effective_setpoint() is None
    events = room.thermostat.set_mode("auto", "windows shut")
    assert events[0].state == "comfort" and "auto selected (windows shut)" in events[0].reason
    assert room.read(5.0) == {"heat1": True, "cool1": False}


def test_boost_expires_back_to_the_schedule() -> None:
    room = Room(zone())  # no schedule: auto means comfort
    assert room.read(21.5) == {"heat1": False}
    assert [e.state for e in room.take_events("mode")] == ["comfort"]
    events = room.thermostat.set_mode("boost", "button pressed")
    assert [(e.kind, e.state) for e in events] == [("mode", "boost")]
    assert "for 60 min" in events[0].reason and "button pressed" in events[0].reason
    assert room.thermostat.effective_setpoint() == 23.0
    assert room.read(21.5) == {"heat1": True}  # below 23 − 0.25
    room.clock.advance(59 * 60)
    assert room.read(21.5) == {"heat1": True}
    assert room.thermostat.current_mode() == "boost"
    assert room.take_events("mode") == []
    room.clock.advance(60)
    assert room.thermostat.current_mode() == "auto"
    assert room.thermostat.effective_setpoint() == 21.0
    assert room.read(21.5) == {"heat1": False}  # above 21 + 0.25
    (back,) = room.take_events("mode")
    assert back.state == "comfort" and "boost for 60 min ended" in back.reason


def test_boost_for_a_given_time() -> None:
    room = Room(zone())
    room.thermostat.set_mode("boost", "meeting", minutes=10)
    room.clock.advance(10 * 60 - 1)
    assert room.thermostat.current_mode() == "boost"
    room.clock.advance(1)
    assert room.thermostat.current_mode() == "auto"


def test_manual_expires_back_to_the_schedule() -> None:
    room = Room(zone())
    room.thermostat.set_manual(19.0)
    assert room.thermostat.current_mode() == "manual"
    assert room.read(20.0) == {"heat1": False}  # above 19 + 0.25
    room.clock.advance(119 * 60)
    assert room.read(20.0) == {"heat1": False}
    assert room.thermostat.effective_setpoint() == 19.0
    room.clock.advance(60)
    assert room.read(20.0) == {"heat1": True}  # comfort again: below 20.75
    assert room.thermostat.current_mode() == "auto"
    assert "manual for 120 min ended" in room.take_events("mode")[-1].reason

    room.thermostat.set_manual(25.0, minutes=30)
    room.clock.advance(30 * 60)
    assert room.thermostat.current_mode() == "auto"


def test_bad_commands() -> None:
    t = Room(zone()).thermostat
    with pytest.raises(ValueError, match="setpoint"):
        t.set_manual(80.0)
    with pytest.raises(ValueError, match="set_manual"):
        t.set_mode("manual", "x")
    with pytest.raises(ValueError, match="unknown mode 'party'"):
        t.set_mode("party", "x")
    with pytest.raises(ValueError, match="minutes"):
        t.set_mode("boost", "x", minutes=0)
    with pytest.raises(ValueError, match="minutes"):
        t.set_mode("auto", "x", minutes=5)


def test_occupancy_setback_after_vacancy_during_comfort() -> None:
    room = Room(zone())
    assert room.read(20.0, occupied=False) == {"heat1": True}
    room.clock.advance(29 * 60)
    assert room.read(20.0, occupied=False) == {"heat1": True}
    assert room.thermostat.effective_setpoint() == 21.0
    room.take_events("mode")
    room.clock.advance(60)
    assert room.read(20.0, occupied=False) == {"heat1": False}  # eco 17: above 17.25
    assert room.thermostat.effective_mode() == "eco"
    (setback,) = room.take_events("mode")
    assert setback.state == "eco" and "vacant for 30 min" in setback.reason
    assert room.read(20.0, occupied=True) == {"heat1": True}
    assert [e.state for e in room.take_events("mode")] == ["comfort"]
    # Unknown occupancy is no evidence of an empty room.
    room.clock.advance(3600)
    assert room.read(20.0, occupied=None) == {"heat1": True}


def test_boost_is_not_set_back() -> None:
    room = Room(zone())
    room.thermostat.set_mode("boost", "button")
    room.read(20.0, occupied=False)
    room.clock.advance(45 * 60)
    room.read(20.0, occupied=False)
    assert room.thermostat.effective_setpoint() == 23.0


def test_vacancy_counts_only_from_the_start_of_comfort() -> None:
    # Monday 5 January 2026, 07:00 GMT = UTC. Vacant all night; comfort starts 07:30, so the
    # room gets its 30 minutes of comfort before it is set back at 08:00.
    schedule = WeeklySchedule(["mon-sun 07:30 comfort", "mon-sun 18:00 eco"], "Europe/London")
    wall = datetime(2026, 1, 5, 7, 0, tzinfo=timezone.utc).timestamp()
    room = Room(zone(), schedule, wall=wall)
    setpoints = {}
    for minute in range(0, 62):
        room.read(20.0, occupied=False)
        setpoints[minute] = room.thermostat.effective_setpoint()
        room.clock.advance(60)
    assert setpoints[29] == 17.0
    assert setpoints[30] == 21.0
    assert setpoints[59] == 21.0
    assert setpoints[60] == 17.0
    assert [e.state for e in room.take_events("mode")] == ["eco", "comfort", "eco"]


def test_sensor_dies_mid_heating() -> None:
    room = Room(zone())
    taken = room.clock.monotonic()
    assert room.read(20.0) == {"heat1": True}
    for _ in range(30):  # 300 s with no new reading: still fresh enough
        room.clock.advance(10)
        assert room.update(None) == {"heat1": True}
    assert room.take_events("alarm") == []
    room.clock.advance(1)
    assert room.update(None) == {"heat1": False}
    (alarm,) = room.take_events("alarm")
    assert alarm.state == "stale" and "climate" in alarm.reason and "301 s" in alarm.reason
    assert alarm.timestamp == room.clock.time()
    for _ in range(60):  # the runtime may keep passing the last (old) reading: same thing
        room.clock.advance(10)
        assert room.update((20.0, taken)) == {"heat1": False}
    assert room.take_events("alarm") == []
    assert room.read(20.0) == {"heat1": True}
    (resolved,) = room.take_events("alarm")
    assert resolved.state == "resolved" and "climate" in resolved.reason


def test_implausible_reading_fails_safe_and_recovers() -> None:
    room = Room(zone())
    assert room.read(20.0) == {"heat1": True}
    assert room.read(85.0) == {"heat1": False}
    (alarm,) = room.take_events("alarm")
    assert alarm.state == "implausible" and "85.0" in alarm.reason and "climate" in alarm.reason
    assert room.read(85.0) == {"heat1": False}
    assert room.read(math.nan) == {"heat1": False}
    assert room.read(-12.0) == {"heat1": False}
    assert room.take_events("alarm") == []
    assert room.read(20.0) == {"heat1": True}
    assert [e.state for e in room.take_events("alarm")] == ["resolved"]
    # From implausible to silent: the alarm changes to stale, once.
    room.read(85.0)
    room.clock.advance(301)
    room.update(None)
    room.clock.advance(100)
    room.update(None)
    assert [e.state for e in room.take_events("alarm")] == ["implausible", "stale"]


def test_no_reading_at_all_is_stale_after_stale_after_from_start() -> None:
    room = Room(zone())
    for _ in range(30):
        assert room.update(None) == {"heat1": False}
        room.clock.advance(10)
    assert room.update(None) == {"heat1": False}
    assert room.take_events("alarm") == []
    assert "waiting for the first reading" in room.reason("heat1")
    room.clock.advance(1)
    room.update(None)
    (alarm,) = room.take_events("alarm")
    assert alarm.state == "stale" and "no reading from sensor climate" in alarm.reason


def test_frost_failsafe_runs_heat_1_at_its_duty_cycle() -> None:
    config = zone(heat_stages=("heat1", "heat2"), cool_stages=("cool1",), failsafe="frost")
    run, period = 0.2 * 20 * 60, 20 * 60  # failsafe_duty of a 20-minute period: 240 s on
    room = Room(config)
    room.read(19.0)
    room.clock.advance(301)
    start = room.clock.monotonic()
    expected = {
        0: True,
        run - 1: True,
        run: False,
        period - 1: False,
        period: True,
        period + run - 1: True,
        period + run: False,
    }
    for offset, heat in expected.items():
        room.clock.advance(start + offset - room.clock.monotonic())
        assert room.update(None) == {"heat1": heat, "heat2": False, "cool1": False}, offset
    assert "failsafe frost" in room.reason("heat1") and "4 of every 20 min" in room.reason("heat1")
    assert [e.state for e in room.take_events("alarm")] == ["stale"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(deadband=0.0), "deadband"),
        (dict(heat_stages=(), cool_stages=()), "heat_stages"),
        (dict(heat_stages="heat1"), "heat_stages"),
        (dict(cool_stages=("heat1",)), "named twice"),
        (dict(cool_stages=("cool1",), cool_offset=0.5), "cool_offset"),
        (dict(failsafe="maybe"), "failsafe"),
        (dict(heat_stages=(), cool_stages=("cool1",), failsafe="frost"), "failsafe"),
        (dict(failsafe_duty=1.5), "failsafe_duty"),
        (dict(comfort=60.0), "comfort"),
        (dict(eco=math.nan), "eco"),
        (dict(stale_after=0), "stale_after"),
        (dict(boost_minutes=-1), "boost_minutes"),
        (dict(plausible_min=30.0, plausible_max=20.0), "plausible_max"),
    ],
)
def test_config_errors_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        zone(**overrides)


def test_a_schedule_may_only_name_schedulable_modes() -> None:
    schedule = WeeklySchedule(["mon 07:00 manual"], "Europe/London")
    with pytest.raises(ValueError, match="manual cannot be scheduled"):
        Thermostat(zone(), schedule, FakeClock())


MODES = ["auto", "off", "comfort", "eco", "boost", "frost"]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.floats(5.0, 35.0) | st.sampled_from([math.nan, 99.0])),
        st.tuples(st.just("advance"), st.floats(0.0, 5400.0)),
        st.tuples(st.just("mode"), st.sampled_from(MODES)),
        st.tuples(st.just("manual"), st.floats(5.0, 30.0)),
        st.tuples(st.just("occupied"), st.sampled_from([True, False, None])),
    ),
    min_size=10,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(
    steps=steps,
    deadband=st.floats(0.1, 3.0),
    margin=st.floats(0.01, 3.0),
    stage_offset=st.floats(0.1, 3.0),
    failsafe=st.sampled_from(["off", "frost"]),
)
def test_heating_and_cooling_are_never_both_wanted(
    steps: list[tuple[str, Any]],
    deadband: float,
    margin: float,
    stage_offset: float,
    failsafe: str,
) -> None:
    config = zone(
        heat_stages=("heat1", "heat2"),
        cool_stages=("cool1", "cool2"),
        deadband=deadband,
        cool_offset=deadband + margin,
        stage_offset=stage_offset,
        failsafe=failsafe,
    )
    schedule = WeeklySchedule(
        ["mon-fri 07:30 comfort", "mon-fri 18:00 eco", "sat 10:00 boost", "sun 00:00 frost"],
        "Europe/London",
    )
    room = Room(config, schedule)
    occupied: Optional[bool] = None
    temperature: Optional[tuple[float, float]] = None
    for action, value in steps:
        if action == "read":
            temperature = (value, room.clock.monotonic())
        elif action == "advance":
            room.clock.advance(value)
        elif action == "mode":
            room.thermostat.set_mode(value, "test")
        elif action == "manual":
            room.thermostat.set_manual(value)
        else:
            occupied = value
        room.update(temperature, occupied)
        assert [w.relay for w in room.wants] == ["heat1", "heat2", "cool1", "cool2"]
        on = {w.relay for w in room.wants if w.on}
        assert not (on & {"heat1", "heat2"} and on & {"cool1", "cool2"}), room.wants
