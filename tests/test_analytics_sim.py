"""The simulation issue 22's benchmark runs on: an open window's air change (BS 5925:1991 /
CIBSE AM10 single-sided ventilation, worked by hand below), and the planner that turns optimum
start's decisions into a zone's comfort."""

from __future__ import annotations

import math

from agent.analytics.optimum_start import OptimumStart
from agent.analytics.preheat import PreheatPlanner, WarmupOutput
from agent.config.analytics import OptimumStartConfig
from drivers.sim.room_physics import (
    Actuation,
    Outdoor,
    RoomPhysics,
    RoomState,
    opening_airflow_m3_s,
)
from drivers.sim.room_profiles import PROFILES


def test_an_open_window_by_the_stack_formula() -> None:
    # Q = Cd A/3 sqrt(g h dT / T): Cd 0.61, A 1 m², h 1.2 m, 20 °C inside, 0 °C outside,
    # T the mean 283.15 K: 0.61/3 * sqrt(9.81 * 1.2 * 20 / 283.15) = 0.1855 m³/s (668 m³/h).
    assert math.isclose(opening_airflow_m3_s(1.0, 20.0, 0.0), 0.1855, rel_tol=2e-3)
    assert opening_airflow_m3_s(1.0, 20.0, 20.0) == 0.0
    assert opening_airflow_m3_s(0.0, 20.0, 0.0) == 0.0


def test_a_room_with_its_window_open_loses_heat_faster() -> None:
    def after_hour(opening: float) -> float:
        room = RoomPhysics(PROFILES["meeting"], RoomState(t_air=20.0, t_mass=20.0))
        room.step(3600, 0, Actuation(opening_m2=opening), Outdoor(0.0, 0.0))
        return room.state.ledger.lost_j

    closed, opened = after_hour(0.0), after_hour(0.8)
    # 0.8 m² adds ~0.15 m³/s, ~180 W/K of air change against the closed room's ~18 W/K.
    assert opened > 3 * closed


def test_the_zone_goes_to_comfort_once_the_decision_is_due_and_stays() -> None:
    learner = OptimumStart("z", OptimumStartConfig(fixed_lead_minutes=60.0))
    planner = PreheatPlanner(learner)
    start = 100_000.0
    early = planner.look(start - 2 * 3600, None, start, 21.0, 17.0, 2.0)
    assert not early.comfort and early.pending is not None
    due = planner.look(start - 3600, None, start, 21.0, 17.0, 2.0)
    assert due.comfort and due.decision is not None and due.decision.source == "fixed"
    # Warmer by now: a new plan would start later, but the start is committed.
    assert planner.look(start - 1800, None, start, 21.0, 20.9, 2.0).comfort
    assert planner.warming(start - 1) and not planner.warming(start)
    assert planner.look(start + 60, (start, start + 3600), None, 21.0, 21.0, 2.0).comfort


def test_a_warm_up_is_the_run_from_the_switch_to_comfort_until_the_thermostat_lets_go() -> None:
    out = WarmupOutput()
    assert out([False, False], False) == "off"
    assert out([False, False], True) == "off"  # the relays follow a look later
    assert out([True, True], True) == "full"
    assert out([True, False], True) == "full"  # stage 2 dropped out near the setpoint
    assert out([False, False], True) == "off"  # let go: the warm-up is over
    assert out([True, False], True) == "part"  # holding the setpoint is not a warm-up


def test_the_need_model_recovers_warm_up_hours_that_grow_faster_than_the_kelvins() -> None:
    # A room whose warm-ups took hours = g (0.1 + 0.05 g + 0.002 d): g = 1 K in 0.19 h at
    # d = 20 K, g = 4 K in 1.24 h. The fit is exact on such points; 3 K at d = 15 K is then
    # 3 (0.1 + 0.15 + 0.03) = 0.84 h.
    o = OptimumStart("z", OptimumStartConfig(model="need"))
    for g, d in ((1.0, 20.0), (2.0, 18.0), (3.0, 22.0), (4.0, 20.0), (2.5, 16.0)):
        hours = g * (0.1 + 0.05 * g + 0.002 * d)
        outdoor = 19.0 - d  # the warm-up is centred on 19 °C: its mean difference is d
        t0 = 19.0 - g / 2
        assert o.learn_warmup(t0, t0 + g, outdoor, hours)
    hours = o.need_hours(3.0, 21.0, 18.0, 19.5 - 15.0)  # mean indoor 19.5, 15 K above outdoor
    assert hours is not None and math.isclose(hours, 0.84, rel_tol=1e-9)
    d = o.plan(100_000.0, 21.0, 18.0, 4.5)
    assert d.source == "learned" and math.isclose(d.lead_minutes, 0.84 * 60 * 1.05, rel_tol=1e-9)


def test_the_need_model_waits_for_warm_ups_of_different_sizes() -> None:
    o = OptimumStart("z", OptimumStartConfig(model="need"))
    for _ in range(5):  # all 4 K: the shape of the curve is unknown, the line decides
        assert o.learn_warmup(17.0, 21.0, 0.0, 1.0)
    assert o.need_hours(4.0, 21.0, 17.0, 0.0) is None
    assert o.plan(100_000.0, 21.0, 17.0, 0.0).reason.endswith("4.0 K/h learned")
