"""Headcount from the CO2 mass balance (agent/room/occupancy.py), on the closed-loop room model.

The truth is the simulated audience; the physics is EN 16798-1's standard person (20 L/h)."""

from __future__ import annotations

import math
import random

import pytest

from agent.config.sessions import Session
from agent.room.occupancy import EDGE_WALK_PER_SEAT, Co2Occupancy, steady_state_headcount
from agent.room.sessions import SessionCalendar
from drivers.sim.closed_loop import Attendance, ClosedLoopRoom
from drivers.sim.room_profiles import PROFILES

T0 = 1_767_258_000.0  # 2026-01-01 09:00 UTC


def follow(
    profile_name: str, people: int, stages: int, minutes: int, seed: int = 3, edge: bool = False
):
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
        near = edge and abs(now["t"] - T0) < 600  # the calendar's start, as the node knows it
        est.add(now["t"], co2, p.airflow_m3_s(stages), None, near)
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


# --- the filter's pieces against the mass balance worked by hand --------------------------------
# 400 m³, 900 m³/h = 0.25 m³/s of outdoor air (λ = 6.25e-4 /s), 20 people at 20 L/h, 10 minutes:
# e^(-0.375) = 0.687289; each person holds 20 L/h / 0.25 m³/s = 22.222 ppm above outdoor at
# equilibrium, so from 800 ppm: 420 + 380 × 0.687289 + 20 × 22.222 × 0.312711 = 820.15 ppm.


def test_the_prediction_follows_the_mass_balance_with_ventilation() -> None:
    est = Co2Occupancy(400.0, 60)
    est.x = [800.0, 20.0]
    est.p = [[100.0, 0.0], [0.0, 4.0]]
    est._predict(600.0, 0.25)
    assert est.x == pytest.approx([820.152, 20.0], abs=1e-3)
    # The variance carries through the same factors: 0.687289² × 100 + 6.94913² × 4 (b, the ppm
    # one more person adds in these 10 minutes: 22.222 × 0.312711).
    assert est.p[0][0] == pytest.approx(240.398, abs=1e-3)
    assert est.p[0][1] == pytest.approx(6.94913 * 4, abs=1e-4)


def test_without_airflow_the_room_only_accumulates() -> None:
    # 20 people × 20 L/h × 10 min = 66.67 L of CO2 in 400 m³: +166.67 ppm.
    est = Co2Occupancy(400.0, 60)
    est.x = [600.0, 20.0]
    est._predict(600.0, 0.0)
    assert est.x[0] == pytest.approx(766.667, abs=1e-3)


def test_the_headcount_walks_fast_only_near_an_edge() -> None:
    # 60 seats: between edges 0.05 people/√s → 0.05² × 30 s = 0.075 people² per reading; at an
    # edge a quarter of the seats (15 people) within 600 s → 15² / 600 × 30 = 11.25.
    for walk, grows in ((None, 0.075), (EDGE_WALK_PER_SEAT, 11.25)):
        est = Co2Occupancy(400.0, 60)
        est.x, est.p = [420.0, 0.0], [[0.0, 0.0], [0.0, 0.0]]
        est._predict(30.0, 0.25, walk)
        assert est.p[1][1] == pytest.approx(grows, rel=1e-9)


def test_a_stage_change_is_not_read_as_people_leaving() -> None:
    # Exact readings of 20 people in 400 m³, with the fan going from infiltration only (0.2 ACH,
    # 80 m³/h) to 1,800 m³/h half way: CO2 falls fast, the count must not.
    g, volume, out = 20e-3 / 3600, 400.0, 420.0
    est, c, t = Co2Occupancy(volume, 60, noise_ppm=1.0), out, 0.0
    for step in range(480):  # 4 h at 30 s
        q = (80.0 if step < 240 else 1880.0) / 3600
        a = math.exp(-q / volume * 30.0)
        est.add(t, c, q, True)  # airflow q from this reading to the next, as the node sets it
        c = out + (c - out) * a + 20 * g / q * 1e6 * (1 - a)
        t += 30.0
        if step in (239, 300, 479):
            assert est.estimate(True).raw == pytest.approx(20.0, abs=0.5)


def test_a_filling_room_is_followed_at_a_calendar_edge() -> None:
    # 20 people walk into the chamber over ten minutes; the calendar knows the session starts.
    # 15 minutes in, the edge walk has followed them; the slow walk alone lags far behind.
    def after(edge: bool) -> float:
        for t, _, est in follow("chamber", 20, 2, 120, edge=edge):
            if t >= T0 + 15 * 60:
                return est.estimate(True).raw
        raise AssertionError("no reading")

    assert after(True) == pytest.approx(20.0, abs=3.0)
    assert 20.0 - after(False) > 4.0


def test_the_calendar_edge_window() -> None:
    cal = SessionCalendar([Session(1000.0, 5000.0)])
    assert [cal.near_edge(t, 600.0) for t in (399.0, 401.0, 1599.0, 1601.0, 4401.0, 5599.0,
                                              5601.0)] == [False, True, True, False, True, True,
                                                           False]  # fmt: skip


def test_the_smoothed_headcount_is_ten_minutes_late_and_exact_on_exact_readings() -> None:
    # 12 people at equilibrium in 60 m³ with 360 m³/h: 12 × 20 L/h / 0.1 m³/s = 666.7 ppm above
    # outdoor, constant. The smoother answers once it has ten minutes of readings.
    est, level = Co2Occupancy(60.0, 12, noise_ppm=1.0), 420.0 + 12 * 20e-3 / 3600 / 0.1 * 1e6
    answers = []
    for step in range(41):
        est.add(step * 30.0, level, 0.1, True)
        answers.append(est.lagged_people())
    assert answers[:20] == [None] * 20  # 0 … 570 s: not ten minutes yet
    assert answers[20:] == [12] * 21


def test_the_report_peak_overshoots_less_than_the_live_peak() -> None:
    # 20 people in the chamber for two hours, five noisy months of one session: the peak of the
    # live estimate rides its noise; the smoothed one, which has seen ten more minutes, not.
    live_over, lagged_over = [], []
    for seed in range(3, 8):
        live = lagged = 0
        for t, _, est in follow("chamber", 20, 2, 120, seed=seed, edge=True):
            if T0 <= t < T0 + 130 * 60:
                live = max(live, est.estimate(None).people)
                lagged = max(lagged, est.lagged_people() or 0)
        assert abs(lagged - 20) <= 1
        live_over.append(live - 20)
        lagged_over.append(lagged - 20)
    assert sum(lagged_over) < sum(live_over)
