"""Fault detection: each rule raises its fault once its condition has held for its configured
time (not before), with the reason, and clears it when the condition ends; clean rooms raise
none."""

from __future__ import annotations

import pytest

from agent.analytics.faults import FaultMonitor
from agent.config.analytics import FaultConfig

KINDS = {"radiator": "heat", "chiller": "cool", "lights": "light"}
WALL = 1_790_000_000.0


def monitor(**config: object) -> FaultMonitor:
    return FaultMonitor(FaultConfig(**config), KINDS)  # type: ignore[arg-type]


def run(m: FaultMonitor, start: float, seconds: int, step: int = 10) -> list[tuple[str, str]]:
    """Ticks every `step` seconds from `start`; the (subject, state) of every event."""
    out = []
    for t in range(int(start), int(start) + seconds + 1, step):
        out += [(e.subject, e.state) for e in m.tick(float(t), WALL + t)]
    return out


def test_heating_with_a_window_open_is_detected_after_its_delay_and_cleared() -> None:
    m = monitor(window_open_minutes=10)
    m.relay("radiator", True, 0)
    m.relay("lights", True, 0)
    m.contact("window-east", True, 0)
    assert run(m, 0, 590) == []  # 9 min 50 s: not yet
    assert run(m, 600, 0) == [("window_open:radiator", "detected")]  # lights do not count
    assert m.active() == {"window_open:radiator": "radiator (heat) on while window-east is open"}
    m.contact("window-east", False, 700)
    assert run(m, 700, 0) == [("window_open:radiator", "cleared")] and m.active() == {}


def test_a_relay_started_too_often_is_short_cycling() -> None:
    m = monitor(short_cycle_starts=6, short_cycle_window_minutes=60)
    for i in range(6):  # six starts in 50 minutes: allowed
        m.relay("chiller", True, i * 600)
        m.relay("chiller", False, i * 600 + 300)
    assert run(m, 3000, 0) == []
    m.relay("chiller", True, 3300)  # the seventh within the hour
    [(subject, state)] = run(m, 3300, 0)
    assert (subject, state) == ("short_cycling:chiller", "detected")
    assert "7 starts in 60 min, at most 6" in m.active()["short_cycling:chiller"]
    assert run(m, 3310, 3600, step=60)[-1:] == [("short_cycling:chiller", "cleared")]


def test_a_setpoint_unmet_for_an_hour_at_full_output() -> None:
    m = monitor(unmet_minutes=60, unmet_margin=1.0)
    m.zone("chamber", True, 18.5, 21.0, "heat")
    assert run(m, 0, 3590, step=60) == []
    assert run(m, 3600, 0) == [("setpoint_unmet:chamber", "detected")]
    m.zone("chamber", True, 20.2, 21.0, "heat")  # within the margin now
    assert run(m, 3660, 0) == [("setpoint_unmet:chamber", "cleared")]
    clean = monitor(unmet_minutes=60)
    clean.zone("chamber", False, 15.0, 21.0, "heat")  # not at full output: a setback, not a fault
    assert run(clean, 0, 7200, step=60) == []


def test_two_sensors_that_disagree_for_too_long() -> None:
    m = monitor(disagree_minutes=30)
    for t in range(0, 1801, 60):
        wobble = (t % 120) / 1000  # live sensors: never frozen
        m.reading("climate", "temperature", 21.0 + wobble, t)
        m.reading("window", "temperature", 24.5 + wobble, t)  # 3.5 K apart: more than 2
        m.reading("co2", "co2", 800.0 + wobble, t)
        events = m.tick(float(t), WALL + t)
        assert [e.subject for e in events] == (
            ["sensors_disagree:climate/window.temperature"] if t == 1800 else []
        )
    assert "climate 21 against window 24.5" in m.active()[
        "sensors_disagree:climate/window.temperature"]  # fmt: skip


def test_a_stale_sensor_is_not_compared() -> None:
    m = monitor(disagree_minutes=1, stale_seconds=600)
    m.reading("climate", "temperature", 21.0, 0)
    for t in range(700, 1500, 60):
        m.reading("window", "temperature", 25.0, t)
        assert m.tick(float(t), WALL + t) == []


def test_thirty_identical_readings_are_a_frozen_sensor() -> None:
    m = monitor(frozen_readings=30)
    for i in range(29):
        m.reading("climate", "temperature", 21.37, i * 10)
        m.reading("lux", "illuminance", 0.0, i * 10)  # dark at night: rightly constant
    assert run(m, 290, 0) == []
    m.reading("climate", "temperature", 21.37, 300)
    assert run(m, 300, 0) == [("frozen:climate.temperature", "detected")]
    m.reading("climate", "temperature", 21.38, 310)
    assert run(m, 310, 0) == [("frozen:climate.temperature", "cleared")]


def test_the_fault_campaigns_38_identical_readings_are_flagged_with_the_defaults() -> None:
    m = monitor()
    for i in range(38):
        m.reading("scd41", "co2", 612.0, i * 5)
    assert run(m, 190, 0) == [("frozen:scd41.co2", "detected")]


def test_a_relay_on_whose_circuit_draws_nothing_and_one_off_that_draws() -> None:
    m = monitor(meter_minutes=5)
    m.relay("radiator", True, 0)
    m.relay("chiller", False, 0)
    for t in range(0, 301, 30):
        m.power("radiator", 0.4, t)  # a blown fuse or an open thermal cut-out
        m.power("chiller", 1800.0, t)  # a welded contactor
    events = run(m, 0, 300, step=30)
    assert sorted(events) == [("meter_mismatch:chiller", "detected"),
                              ("meter_mismatch:radiator", "detected")]  # fmt: skip
    assert m.active()["meter_mismatch:radiator"] == "radiator is on but its circuit draws 0.4 W"
    m.power("radiator", 2000.0, 330)
    assert run(m, 330, 0) == [("meter_mismatch:radiator", "cleared")]


def test_a_clean_day_raises_nothing() -> None:
    m = monitor()
    temp = 20.0
    for t in range(0, 86400, 60):
        heating = (t // 1800) % 2 == 0  # half-hour cycles: 24 starts a day, 1 an hour
        m.relay("radiator", heating, t)
        m.power("radiator", 2000.0 if heating else 0.0, t)
        temp += 0.01 if heating else -0.01
        m.reading("climate", "temperature", round(temp, 2), t)
        m.reading("window", "temperature", round(temp + 0.5, 2), t)
        m.zone("chamber", heating, temp, 20.5, "heat")
        assert m.tick(float(t), WALL + t) == []


@pytest.mark.parametrize(
    "field, value",
    [("window_open_minutes", -1), ("short_cycle_starts", 2.5), ("frozen_readings", -3),
     ("meter_on_min_w", float("inf"))],
)  # fmt: skip
def test_bad_thresholds_are_refused_with_the_key(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        FaultConfig(**{field: value})  # type: ignore[arg-type]


def test_a_bad_disagreement_limit_names_its_quantity() -> None:
    with pytest.raises(ValueError, match=r"disagree\.co2"):
        FaultConfig(disagree={"co2": 0})
