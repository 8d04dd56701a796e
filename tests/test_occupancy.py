"""Headcount from the CO2 mass balance (agent/occupancy.py), on the closed-loop room model.

The truth is the simulated audience; the physics is EN 16798-1's standard person (20 L/h)."""

from __future__ import annotations

import random

import pytest

from agent.occupancy import Co2Occupancy, steady_state_headcount
from drivers.sim.closed_loop import Attendance, ClosedLoopRoom
from drivers.sim.room_profiles import PROFILES

T0 = 1_767_258_000.0  # 2026-01-01 09:00 UTC


def follow(profile_name: str, people: int, stages: int, minutes: int, seed: int = 3):
    p = PROFILES[profile_name]
    now = {"t": T0 - 1800}
    room = ClosedLoopRoom(
        p,
        clock=lambda: now["t"],
        sessions=[Attendance(T0, T0 + minutes * 60, people)],
        relays=lambda: [("fan", 100.0, stages >= 1), ("fan", 100.0, stages >= 2)],
    )
    rng = random.Random(seed)
    est = Co2Occupancy(p.volume_m3, p.seats)
    while now["t"] < T0 + (minutes + 30) * 60:
        now["t"] += 30
        co2 = room.environment().co2 + rng.gauss(0, 10)  # an SCD4x's ±10 ppm repeatability
        est.add(now["t"], co2, p.airflow_m3_s(stages))
        yield now["t"], room.people(now["t"]), est


@pytest.mark.parametrize("profile, people, stages", [("meeting", 8, 1), ("chamber", 45, 2)])
def test_a_steady_audience_is_counted_within_its_uncertainty(profile, people, stages) -> None:
    errors = []
    for t, truth, est in follow(profile, people, stages, 120):
        if T0 + 30 * 60 <= t < T0 + 115 * 60:  # after arrival, before departure
            e = est.estimate(True)
            errors.append(abs(e.raw - truth))
            assert abs(e.raw - truth) < 3 * e.uncertainty + 1
    assert sum(errors) / len(errors) < max(1.0, 0.06 * people)


def test_an_empty_room_reads_zero_and_presence_has_the_last_word() -> None:
    counts = []
    for t, _, est in follow("meeting", 6, 1, 60):
        if t > T0 + 80 * 60:  # 20 min after they left (CO2 decays with 3.3 ACH)
            e = est.estimate(None)
            assert abs(e.raw) < 3 * e.uncertainty + 0.5
            counts.append(e.people)
            assert est.estimate(False).people == 0
            assert est.estimate(True).people >= 1  # someone sits still: at least one
    assert sum(counts) / len(counts) < 0.3


def test_before_any_reading_only_presence_speaks() -> None:
    est = Co2Occupancy(60.0, 12)
    assert est.estimate(None).method == "none"
    assert est.estimate(True).people == 1


def test_the_co2_threshold_baseline_inverts_the_equilibrium() -> None:
    # 10 people × 20 L/h in 0.1 m³/s settle 555.6 ppm above outdoor.
    assert steady_state_headcount(420 + 10 * 20e-3 / 3600 / 0.1 * 1e6, 0.1) == 10
