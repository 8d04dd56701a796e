"""The simulation issue 22's benchmark runs on: an open window's air change (BS 5925:1991 /
CIBSE AM10 single-sided ventilation, worked by hand below), and the planner that turns optimum
start's decisions into a zone's comfort."""

from __future__ import annotations

import math

from agent.analytics.optimum_start import OptimumStart, OptimumStartConfig
from agent.analytics.preheat import PreheatPlanner, WarmupOutput
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
