"""Ventilation on a FakeClock: thresholds worked out by hand from the defaults in the config."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.ventilation import VentilationConfig
from agent.control.types import Want
from agent.control.ventilation import VentilationControl
from tests.clocks import FakeClock

MIN = 60.0


def make(**overrides: object) -> tuple[VentilationControl, FakeClock]:
    fields: dict[str, object] = {"name": "chamber", "relays": "fan", "co2_sensor": "scd41"}
    fields.update(overrides)
    clock = FakeClock()
    return VentilationControl(VentilationConfig(**fields), clock), clock  # type: ignore[arg-type]


def co2(control: VentilationControl, clock: FakeClock, ppm: float, voc: float = 0) -> list[Want]:
    """One tick, a fresh reading of each sensor taken just now."""
    clock.advance(1)
    now = clock.monotonic()
    return control.update(co2=(ppm, now), voc=(voc, now))[0]


def test_single_stage_hysteresis() -> None:
    # on above 1000 ppm, off below 800 ppm
    fan, clock = make(min_run_minutes=0)
    expected = [
        (1000, False),  # not above 1000
        (1001, True),
        (900, True),  # inside the band
        (800, True),  # not below 800
        (799, False),
        (900, False),  # inside the band, from below: stays off
        (1200, True),
    ]
    for ppm, on in expected:
        wants = co2(fan, clock, ppm)
        assert [(w.relay, w.on) for w in wants] == [("fan", on)], ppm
    assert wants[0].reason == "ventilation chamber: stage 1: CO₂ 1200 ppm above 1000 (scd41)"


def test_two_stages() -> None:
    # stage 2 above 1400; it ends below 1400 - (1000 - 800) = 1200
    fan, clock = make(relays=("fan_low", "fan_high"), co2_high=1400, min_run_minutes=0)
    expected = [
        (1100, 1),
        (1401, 2),
        (1300, 2),
        (1200, 2),  # not below 1200
        (1199, 1),
        (1300, 1),  # from stage 1, 1300 is not above 1400
        (850, 1),
        (799, 0),
        (1500, 2),  # straight from off to stage 2
    ]
    for ppm, stage in expected:
        wants = co2(fan, clock, ppm)
        assert fan.stage == stage, ppm
        assert {w.relay: w.on for w in wants} == {
            "fan_low": stage == 1,
            "fan_high": stage == 2,
        }, ppm
        assert [w.on for w in wants] == sorted(w.on for w in wants)  # switch-offs come first


def test_voc_runs_the_fan_with_its_own_hysteresis() -> None:
    # VOC index: on above 250, off below 150; CO₂ stays low throughout
    fan, clock = make(voc_sensor="sgp40", min_run_minutes=0)
    for voc, on in [(250, False), (251, True), (150, True), (149, False)]:
        wants = co2(fan, clock, 500, voc=voc)
        assert wants[0].on is on, voc
    wants = co2(fan, clock, 500, voc=300)
    assert "VOC index 300 above 250 (sgp40)" in wants[0].reason


def test_voc_is_ignored_when_no_voc_sensor_is_configured() -> None:
    fan, clock = make(min_run_minutes=0)
    assert not co2(fan, clock, 500, voc=400)[0].on


def test_minimum_run() -> None:
    fan, clock = make()  # 10 min
    assert co2(fan, clock, 1100)[0].on  # on at 1001 s
    assert co2(fan, clock, 700)[0].on
    clock.advance(10 * MIN - 3)  # 1 s short of 10 min after it started
    wants = co2(fan, clock, 700)
    assert wants[0].on and "minimum run of 10 min" in wants[0].reason
    assert not co2(fan, clock, 700)[0].on  # 10 min exactly


def test_stale_co2_runs_the_failsafe() -> None:
    fan, clock = make(min_run_minutes=0)
    taken = clock.monotonic()
    wants, events = fan.update(co2=(600, taken))
    assert not wants[0].on and events == []
    clock.advance(300)  # exactly stale_after: still fresh
    assert not fan.update(co2=(600, taken))[0][0].on
    clock.advance(1)
    wants, events = fan.update(co2=(600, taken))
    assert wants[0].on
    assert "CO₂ sensor scd41 stale, failsafe on" in wants[0].reason
    assert [(e.kind, e.subject, e.state) for e in events] == [
        ("alarm", "ventilation:chamber", "stale")
    ]
    assert "last reading 301 s ago" in events[0].reason
    wants, events = fan.update(co2=(600, clock.monotonic()))
    assert not wants[0].on
    assert [(e.kind, e.state) for e in events] == [("alarm", "resolved")]


def test_failsafe_off() -> None:
    fan, clock = make(failsafe="off", min_run_minutes=0)
    taken = clock.monotonic()
    assert fan.update(co2=(1500, taken))[0][0].on
    clock.advance(301)
    assert not fan.update(co2=(1500, taken))[0][0].on


def test_no_reading_yet_gets_stale_after_to_arrive() -> None:
    fan, clock = make()
    clock.advance(300)
    wants, events = fan.update()  # a sensor may take a while after boot
    assert not wants[0].on and events == []
    assert wants[0].reason == "ventilation chamber: stage 0: no CO₂ reading from scd41 yet"
    clock.advance(1)
    wants, events = fan.update()
    assert wants[0].on and "no reading in 301 s" in events[0].reason


def test_stale_voc_alone_runs_the_failsafe() -> None:
    fan, clock = make(voc_sensor="sgp40", min_run_minutes=0)
    old = clock.monotonic()
    clock.advance(301)
    wants, events = fan.update(co2=(500, clock.monotonic()), voc=(50, old))
    assert wants[0].on and "VOC sensor sgp40 stale" in wants[0].reason
    assert "VOC sensor sgp40" in events[0].reason


def test_boost_runs_the_top_stage_then_hands_back() -> None:
    fan, clock = make(relays=("fan_low", "fan_high"), co2_high=1400, min_run_minutes=0)
    events = fan.boost(20, reason="scene meeting")
    assert [(e.kind, e.state, e.reason) for e in events] == [
        ("mode", "boost", "ventilation chamber: scene meeting: boost for 20 min")
    ]
    wants = co2(fan, clock, 500)
    assert {w.relay: w.on for w in wants} == {"fan_low": False, "fan_high": True}
    clock.advance(20 * MIN - 2)  # co2() advanced 1 s: now 1 s before the boost ends
    wants, events = fan.update(co2=(500, clock.monotonic()))
    assert fan.stage == 2
    clock.advance(1)
    wants, events = fan.update(co2=(500, clock.monotonic()))
    assert fan.stage == 0 and [e.state for e in events] == ["automatic"]


def test_boost_default_length_and_cancel() -> None:
    fan, clock = make()
    fan.boost()
    assert fan.boost_until == clock.monotonic() + 30 * MIN
    assert [e.state for e in fan.cancel_boost()] == ["automatic"]
    assert fan.cancel_boost() == []
    with pytest.raises(ValueError, match="minutes: must be a positive number"):
        fan.boost(0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"co2_off": 1000}, "co2_off: must be below co2_on"),
        ({"voc_on": 100}, "voc_off: must be below voc_on"),
        ({"relays": ("lo", "hi")}, "co2_high: two relays"),
        ({"co2_high": 1500}, "co2_high: stage 2 needs two relays"),
        ({"relays": ("lo", "hi"), "co2_high": 900}, "co2_high: must be above co2_on"),
        ({"relays": ("lo", "lo"), "co2_high": 1500}, "relays: low and high are the same"),
        ({"relays": ("a", "b", "c")}, "relays: one relay, or two"),
        ({"failsafe": "maybe"}, "failsafe: must be 'on' or 'off'"),
        ({"stale_after": 0}, "stale_after: must be a positive number"),
        ({"min_run_minutes": -1}, "min_run_minutes: must be 0 or more"),
        ({"co2_sensor": ""}, "co2_sensor: must name a device"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_relays_as_one_name_or_a_pair() -> None:
    assert VentilationConfig("v", "fan", "scd").stages == ("fan",)
    two = VentilationConfig("v", ("lo", "hi"), "scd", co2_high=1500)
    assert two.stages == ("lo", "hi") and two.co2_high_off == 1300


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(400, 2000), max_size=60))
def test_stage_1_changes_only_across_its_thresholds(readings: list[int]) -> None:
    fan, clock = make(min_run_minutes=0)
    was_on = False
    for ppm in readings:
        on = co2(fan, clock, ppm)[0].on
        if on and not was_on:
            assert ppm > 1000
        if was_on and not on:
            assert ppm < 800
        if ppm > 1000:
            assert on
        if ppm < 800:
            assert not on
        was_on = on
