"""The closed-loop room model (drivers/sim/room_physics.py, closed_loop.py).

Expected values come from the physics the profile states (U·A sums, capacities, airflows, EN
16798-1's 20 L/h of CO2 per person), computed here from the room's observable trace, never from
the model's own bookkeeping.
"""

from __future__ import annotations

import math

import pytest

from drivers.sim.closed_loop import Attendance, ClosedLoopRoom, headcount
from drivers.sim.room_physics import AIR_DENSITY
from drivers.sim.room_profiles import PROFILES, WEATHER, RoomProfile

DAY0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
HEATER_W = 9000.0


class VirtualClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run_day(profile: RoomProfile, sessions: list[Attendance]) -> tuple[ClosedLoopRoom, list[dict]]:
    """A winter day under a simple bang-bang thermostat and a fan on while people are in,
    sampled every minute: what a test can observe of the room."""
    clock = VirtualClock(DAY0)
    relays = {"heat": False, "fan": False}
    room = ClosedLoopRoom(
        profile,
        clock=clock,
        sessions=sessions,
        weather=lambda t: WEATHER["winter"],
        relays=lambda: [("heat", HEATER_W, relays["heat"]), ("fan", 150.0, relays["fan"])],
    )
    trace = []
    for minute in range(24 * 60 + 1):
        clock.t = DAY0 + minute * 60.0
        room.environment()  # advances the physics to now
        s, out = room.physics.state, room.outdoor(clock.t)
        trace.append({"t": clock.t, "t_air": s.t_air, "t_mass": s.t_mass, "t_out": out.temperature,
                      "solar": out.solar_w_m2, "heat": relays["heat"], "fan": relays["fan"],
                      "people": room.people(clock.t), "co2": s.co2_ppm})  # fmt: skip
        # The decision holds for the next minute, as a relay would.
        if s.t_air < 20.5:
            relays["heat"] = True
        elif s.t_air > 21.5:
            relays["heat"] = False
        relays["fan"] = room.people(clock.t) > 0
    return room, trace


def test_energy_balance_closes_over_a_simulated_day() -> None:
    p = PROFILES["chamber"]
    sessions = [Attendance(DAY0 + 9 * 3600, DAY0 + 12 * 3600, 45),
                Attendance(DAY0 + 18 * 3600, DAY0 + 21 * 3600, 60)]  # fmt: skip
    room, trace = run_day(p, sessions)
    c_air = 5.0 * 1.2 * 1005.0 * p.volume_m3  # furniture factor 5 × ρ c_p V
    c_mass = 165_000.0 * p.floor_m2  # EN ISO 13790 "medium" class
    h_op = p.opaque_w_k

    heat_in = lost = 0.0
    for a, b in zip(trace, trace[1:]):
        dt = b["t"] - a["t"]
        # During a minute the relays hold a's decision; people and sun move smoothly.
        heat_in += HEATER_W * a["heat"] * dt
        heat_in += 75.0 * (a["people"] + b["people"]) / 2 * dt  # ASHRAE: 75 W sensible, seated
        heat_in += p.base_load_w * dt
        heat_in += p.solar_aperture_m2 * (a["solar"] + b["solar"]) / 2 * dt
        flow = p.infiltration_ach * p.volume_m3 / 3600 + (
            p.stage_airflow_m3h[0] / 3600 if a["fan"] else 0.0
        )
        h_out = p.glazing_w_k + AIR_DENSITY * 1005.0 * flow

        lost += (
            sum(
                h_out * (x["t_air"] - x["t_out"]) + h_op * (x["t_mass"] - x["t_out"])
                for x in (a, b)
            )
            / 2
            * dt
        )
    stored = c_air * (trace[-1]["t_air"] - trace[0]["t_air"]) + c_mass * (
        trace[-1]["t_mass"] - trace[0]["t_mass"]
    )
    assert heat_in > 100e6  # a winter day: the heater did real work
    assert abs(heat_in - stored - lost) / heat_in < 0.001
    # The model's own ledger agrees with what the test saw.
    ledger = room.physics.state.ledger
    assert abs(ledger.heat_in_j - heat_in) / heat_in < 0.001
    assert abs(ledger.heat_in_j - stored - ledger.lost_j) / heat_in < 1e-9


def test_co2_decay_after_a_session_follows_the_air_change_rate() -> None:
    p = PROFILES["meeting"]
    start, end = DAY0 + 10 * 3600, DAY0 + 11 * 3600
    clock = VirtualClock(start - 3600)
    fan = {"on": False}
    room = ClosedLoopRoom(p, clock=clock, sessions=[Attendance(start, end, 12)],
                          relays=lambda: [("ventilation", 80.0, fan["on"]),
                                          ("ventilation", 80.0, fan["on"])])  # fmt: skip
    clock.t = end
    room.environment()
    c0 = room.physics.state.co2_ppm
    # 12 people × 20 L/h in 60 m³ with 0.3 ACH for an hour (ramped in and out): well up.
    assert c0 > 1500
    fan["on"] = True  # both stages: 360 m³/h + infiltration
    room.environment()
    n = (p.infiltration_ach * p.volume_m3 + 360.0) / p.volume_m3  # air changes per hour
    for minute in range(1, 61):
        clock.t = end + minute * 60
        measured = room.physics.state.co2_ppm if room.environment() else 0.0
        expected = 420.0 + (c0 - 420.0) * math.exp(-n * minute / 60)
        assert measured == pytest.approx(expected, abs=0.5), minute
    # Read back as an installer would: the log-linear slope gives the air change rate.
    assert n == pytest.approx(6.3)


def test_steady_state_co2_is_the_mass_balance() -> None:
    """Long enough at constant occupancy and airflow, CO2 settles at outdoor + G/Q."""
    p = PROFILES["meeting"]
    clock = VirtualClock(DAY0)
    room = ClosedLoopRoom(p, clock=clock, sessions=[Attendance(DAY0, DAY0 + 10 * 3600, 10)],
                          relays=lambda: [("fan", 50.0, True)])  # fmt: skip
    clock.t = DAY0 + 8 * 3600
    room.environment()
    q = (p.infiltration_ach * p.volume_m3 + p.stage_airflow_m3h[0]) / 3600  # m³/s
    assert room.physics.state.co2_ppm == pytest.approx(420 + 10 * 20e-3 / 3600 / q * 1e6, abs=1)


def test_the_relays_close_the_loop() -> None:
    """Cause and effect for the demo: the heater warms the room, the fan brings CO2 down."""
    p = PROFILES["meeting"]
    results = {}
    for heat, fan in ((False, False), (True, True)):
        clock = VirtualClock(DAY0 + 9 * 3600)
        room = ClosedLoopRoom(
            p,
            clock=clock,
            sessions=[Attendance(clock.t, clock.t + 3600, 12)],
            relays=lambda h=heat, f=fan: [("heat", 2000.0, h), ("fan", 50.0, f)],
        )
        clock.t += 3600
        env = room.environment()
        results[heat] = (env.temperature, env.co2)
    assert results[True][0] > results[False][0] + 1.0
    assert results[True][1] < results[False][1] - 500


def test_headcount_ramps_in_and_out() -> None:
    s = [Attendance(0.0, 3600.0, 30)]
    assert headcount(s, -1) == 0
    assert headcount(s, 300.0) == pytest.approx(15.0)  # half way through the 10-minute arrival
    assert headcount(s, 1800.0) == 30
    assert headcount(s, 3600.0 - 150.0) == pytest.approx(15.0)  # half way out
    assert headcount(s, 3600.0) == 0


def test_winter_and_summer_days_have_their_shape() -> None:
    w = WEATHER["winter"]
    assert w.outdoor_temperature(5.0) == pytest.approx(w.t_min)
    assert w.outdoor_temperature(15.0) == pytest.approx(w.t_max)
    assert w.solar(3.0) == 0.0
    assert w.solar((w.sunrise_h + w.sunset_h) / 2) == pytest.approx(w.solar_peak_w_m2)
