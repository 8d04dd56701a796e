"""EN 16798-1 categories (agent/room/comfort.py) and the year of 15-minute records (comfort_log.py).

Thresholds from EN 16798-1:2019 annex B (CO2 above outdoor 550/800/1350 ppm) and the office
operative-temperature ranges it shares with EN 15251:2007 table A.3.
"""

from __future__ import annotations

import os

import pytest

from agent.room.comfort import ComfortTracker, co2_category, grade, season_of, temperature_category
from agent.room.comfort_log import DISK_BUDGET, SLOT, ComfortLog


@pytest.mark.parametrize(
    "above, expected",
    [(0, "I"), (550.0, "I"), (550.1, "II"), (800.0, "II"), (800.1, "III"),
     (1350.0, "III"), (1350.1, "IV"), (3000, "IV")],
)  # fmt: skip
def test_co2_category_at_each_threshold(above: float, expected: str) -> None:
    assert co2_category(420.0 + above, 420.0) == expected


@pytest.mark.parametrize(
    "season, t, expected",
    [
        ("heating", 21.0, "I"), ("heating", 23.0, "I"), ("heating", 20.99, "II"),
        ("heating", 23.01, "II"), ("heating", 20.0, "II"), ("heating", 24.0, "II"),
        ("heating", 19.99, "III"), ("heating", 24.01, "III"), ("heating", 19.0, "III"),
        ("heating", 25.0, "III"), ("heating", 18.99, "IV"), ("heating", 25.01, "IV"),
        ("cooling", 23.5, "I"), ("cooling", 25.5, "I"), ("cooling", 23.49, "II"),
        ("cooling", 25.51, "II"), ("cooling", 23.0, "II"), ("cooling", 26.0, "II"),
        ("cooling", 22.99, "III"), ("cooling", 26.01, "III"), ("cooling", 22.0, "III"),
        ("cooling", 27.0, "III"), ("cooling", 21.99, "IV"), ("cooling", 27.01, "IV"),
    ],
)  # fmt: skip
def test_temperature_category_at_each_band_edge(season: str, t: float, expected: str) -> None:
    assert temperature_category(t, season) == expected


def test_season_from_outdoor_running_mean_or_month() -> None:
    assert season_of(15.0, 7) == "heating"
    assert season_of(15.1, 1) == "cooling"
    assert season_of(None, 7) == "cooling"
    assert season_of(None, 11) == "heating"


def test_overall_is_the_worse_and_missing_readings_are_not_graded() -> None:
    assert grade(22.0, 420 + 900, 420, "heating").overall == "III"
    assert grade(18.0, 420 + 100, 420, "heating").overall == "IV"
    assert grade(None, 420 + 700, 420, "heating").overall == "II"
    assert grade(None, None, 420, "heating").overall is None


# One occupied working day, hour by hour from 09:00: (CO2 above outdoor, operative temperature).
DAY = [(300, 21.0), (500, 22.0), (700, 23.0), (800, 23.5),
       (1000, 24.0), (1350, 25.0), (1400, 25.1), (600, 18.9)]  # fmt: skip
# By hand, heating season: CO2 I I II II III III IV II; temperature I I I II II III IV IV;
# overall (the worse of each hour) I I II II III III IV IV.
HAND = {
    "co2": {"I": 2 / 8, "II": 3 / 8, "III": 2 / 8, "IV": 1 / 8},
    "operative_temperature": {"I": 3 / 8, "II": 2 / 8, "III": 1 / 8, "IV": 2 / 8},
    "overall": {"I": 2 / 8, "II": 2 / 8, "III": 2 / 8, "IV": 2 / 8},
}


def test_shares_on_a_synthetic_week_equal_the_hand_computation() -> None:
    tracker = ComfortTracker()
    days = [f"2026-01-{d:02d}" for d in range(5, 12)]  # Monday to Sunday
    for i, day in enumerate(days):
        weekday = i < 5
        for minute in range(24 * 60):
            hour = minute // 60
            occupied = weekday and 9 <= hour < 17
            above, t = DAY[hour - 9] if 9 <= hour < 17 else (2500, 15.0)  # bad but empty
            tracker.add(day, grade(t, 420.0 + above, 420.0, "heating"), occupied, 60.0)
    for i, day in enumerate(days):
        shares = tracker.shares(day)
        if i >= 5:
            assert shares == {}  # nobody in at the weekend: nothing graded
            continue
        for quantity, expected in HAND.items():
            for category, share in expected.items():
                assert shares[quantity][category] == pytest.approx(share, abs=0.001)
        assert tracker.days[day].occupied_s == 8 * 3600


def test_a_year_of_quarter_hours_fits_the_disk_budget(tmp_path) -> None:
    path = tmp_path / "comfort.sqlite"
    log = ComfortLog(path)
    start = 1_767_225_600  # 2026-01-01 UTC
    slots = 366 * 96
    for i in range(slots):
        t = start + i * SLOT
        occupied = 9 <= (i % 96) // 4 < 17
        log.add(t, grade(21.0 + (i % 7) / 3, 500.0 + i % 900, 420.0, "heating"), occupied, SLOT)
    log.close()
    size = os.path.getsize(path)
    assert size < DISK_BUDGET, size
    records = ComfortLog(path).records()
    assert len(records) == slots
    assert records[0].slot == start
    assert records[40].occupied == SLOT and records[0].occupied == 0


def test_a_slot_record_holds_the_means_and_their_categories(tmp_path) -> None:
    log = ComfortLog(tmp_path / "c.sqlite")
    t0 = 1_767_225_600
    log.add(t0, grade(20.0, 1000.0, 420.0, "heating"), True, 60)
    log.add(t0 + 60, grade(22.0, 1400.0, 420.0, "heating"), False, 60)
    record = log.add(t0 + SLOT, grade(22.0, 500.0, 420.0, "heating"), True, 60)
    assert record is not None
    assert (record.t_op, record.co2, record.occupied) == (21.0, 1200.0, 60)
    assert (record.t_cat, record.co2_cat) == ("I", "II")  # 21.0 °C; 780 ppm above outdoor
