"""WeeklySchedule: parsing, wrap-around over the week, and local time across DST changes.

Expected instants are written out by hand in UTC. In 2026 Europe/London changes on the last
Sundays of March and October: 29 March 01:00 UTC clocks jump from 01:00 GMT to 02:00 BST (local
01:00-01:59 does not exist); 25 October 01:00 UTC they fall back from 02:00 BST to 01:00 GMT
(local 01:00-01:59 happens twice). 5 January 2026 is a Monday; London is on GMT (= UTC) then.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from agent.config.schedule import WeeklySchedule, parse_rule

LONDON = "Europe/London"


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()


def test_parse_days_ranges_lists_and_wrapping_ranges() -> None:
    assert parse_rule("mon-fri 07:30 comfort").days == frozenset({0, 1, 2, 3, 4})
    assert parse_rule("sat,sun 00:00 eco").days == frozenset({5, 6})
    assert parse_rule("mon-wed,fri 7:05 eco").days == frozenset({0, 1, 2, 4})
    assert parse_rule("fri-mon 23:59 eco").days == frozenset({4, 5, 6, 0})
    rule = parse_rule("Wed 18:30 Comfort")
    assert (rule.days, rule.minute, rule.mode) == (frozenset({2}), 18 * 60 + 30, "comfort")


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("mun 07:00 eco", "unknown day 'mun'"),
        ("mon-frei 07:00 eco", "unknown day 'frei'"),
        ("mon 25:00 eco", "bad time '25:00'"),
        ("mon 07:60 eco", "bad time '07:60'"),
        ("mon 7.30 eco", "bad time '7.30'"),
        ("mon 07:00", "expected three parts"),
        ("mon 07:00 eco extra", "expected three parts"),
        ("mon 07:00 2eco", "bad mode name '2eco'"),
    ],
)
def test_parse_errors_name_the_rule_and_the_problem(rule: str, problem: str) -> None:
    with pytest.raises(ValueError) as e:
        WeeklySchedule(["sun 00:00 eco", rule], LONDON)
    assert repr(rule) in str(e.value)
    assert problem in str(e.value)


def test_schedule_level_errors() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Lodnon'"):
        WeeklySchedule(["mon 07:00 eco"], "Europe/Lodnon")
    with pytest.raises(ValueError, match="no rules"):
        WeeklySchedule([], LONDON)
    with pytest.raises(ValueError, match="list of strings"):
        WeeklySchedule("mon 07:00 eco", LONDON)
    with pytest.raises(ValueError) as e:
        WeeklySchedule(["mon 07:00 eco", "mon-fri 07:00 comfort"], LONDON)
    assert "'mon 07:00 eco' and 'mon-fri 07:00 comfort'" in str(e.value)
    assert "mon 07:00, to eco and to comfort" in str(e.value)
    with pytest.raises(ValueError, match="unknown mode 'party'"):
        WeeklySchedule(["mon 07:00 party"], LONDON, modes={"eco", "comfort"})


def test_same_time_same_mode_twice_is_fine() -> None:
    s = WeeklySchedule(["mon 07:00 eco", "mon-fri 07:00 eco", "sun 12:00 comfort"], LONDON)
    assert s.mode_at(utc(2026, 1, 5, 7, 0)) == "eco"


BRIEF_EXAMPLE = [
    "mon-fri 07:30 comfort",
    "mon-fri 18:00 eco",
    "sat,sun 00:00 eco",
    "wed 18:30 comfort",
    "wed 22:00 eco",
]


def test_a_week_of_the_example_schedule() -> None:
    s = WeeklySchedule(BRIEF_EXAMPLE, LONDON)
    # Monday 5 January 2026, GMT.
    assert s.mode_at(utc(2026, 1, 5, 7, 29, 59)) == "eco"
    assert s.mode_at(utc(2026, 1, 5, 7, 30)) == "comfort"
    assert s.mode_at(utc(2026, 1, 5, 17, 59)) == "comfort"
    assert s.mode_at(utc(2026, 1, 5, 18, 0)) == "eco"
    # Wednesday 7 January: eco 18:00-18:30, comfort again until 22:00.
    assert s.mode_at(utc(2026, 1, 7, 18, 15)) == "eco"
    assert s.mode_at(utc(2026, 1, 7, 21, 59)) == "comfort"
    assert s.next_change(utc(2026, 1, 7, 18, 0)) == (utc(2026, 1, 7, 18, 30), "comfort")
    assert s.next_change(utc(2026, 1, 7, 18, 30)) == (utc(2026, 1, 7, 22, 0), "eco")
    # Friday 18:00 eco; the weekend's 00:00 eco rules change nothing, so the next change is
    # Monday 12 January 07:30.
    assert s.next_change(utc(2026, 1, 9, 18, 0)) == (utc(2026, 1, 12, 7, 30), "comfort")


def test_wraps_from_sunday_to_monday() -> None:
    s = WeeklySchedule(["mon 08:00 comfort", "fri 18:00 eco"], LONDON)
    # Monday 5 January before 08:00: the last rule was Friday 2 January 18:00, last week.
    assert s.mode_at(utc(2026, 1, 5, 7, 59)) == "eco"
    assert s.rule_at(utc(2026, 1, 5, 7, 59)).text == "fri 18:00 eco"
    assert s.mode_at(utc(2026, 1, 5, 8, 0)) == "comfort"
    # Sunday 11 January late: the next change wraps into Monday 12 January.
    assert s.next_change(utc(2026, 1, 11, 23, 59)) == (utc(2026, 1, 12, 8, 0), "comfort")
    assert s.next_change(utc(2026, 1, 5, 8, 0)) == (utc(2026, 1, 9, 18, 0), "eco")


def test_one_mode_never_changes() -> None:
    s = WeeklySchedule(["mon 00:00 eco", "thu 12:00 eco"], LONDON)
    assert s.mode_at(utc(2026, 1, 4, 12, 0)) == "eco"
    assert s.next_change(utc(2026, 1, 4, 12, 0)) is None


def test_spring_forward_keeps_local_time() -> None:
    s = WeeklySchedule(["mon-sun 07:00 comfort", "mon-sun 22:00 eco"], LONDON)
    # Saturday 28 March 07:00 GMT = 07:00 UTC; Sunday 29 March 07:00 BST = 06:00 UTC.
    assert s.mode_at(utc(2026, 3, 28, 6, 59)) == "eco"
    assert s.mode_at(utc(2026, 3, 28, 7, 0)) == "comfort"
    assert s.next_change(utc(2026, 3, 28, 22, 0)) == (utc(2026, 3, 29, 6, 0), "comfort")
    assert s.mode_at(utc(2026, 3, 29, 5, 59, 59)) == "eco"
    assert s.mode_at(utc(2026, 3, 29, 6, 0)) == "comfort"
    # Sunday 22:00 BST = 21:00 UTC.
    assert s.next_change(utc(2026, 3, 29, 6, 0)) == (utc(2026, 3, 29, 21, 0), "eco")


def test_a_time_skipped_by_spring_forward_starts_when_the_clocks_jump() -> None:
    s = WeeklySchedule(["sun 01:30 boost", "sun 02:45 comfort", "sat 20:00 eco"], LONDON)
    # A normal Sunday, 22 March: 01:30 GMT = 01:30 UTC.
    assert s.next_change(utc(2026, 3, 21, 20, 0)) == (utc(2026, 3, 22, 1, 30), "boost")
    # 29 March: local 01:30 does not exist; the first valid instant after it is the jump,
    # 01:00 UTC (local 02:00 BST). 02:45 BST = 01:45 UTC.
    assert s.next_change(utc(2026, 3, 28, 20, 0)) == (utc(2026, 3, 29, 1, 0), "boost")
    assert s.mode_at(utc(2026, 3, 29, 0, 59, 59)) == "eco"
    assert s.mode_at(utc(2026, 3, 29, 1, 0)) == "boost"
    assert s.mode_at(utc(2026, 3, 29, 1, 45)) == "comfort"


def test_a_gap_rule_and_the_rule_at_the_gap_end_meet_the_later_written_wins() -> None:
    # On 29 March both 01:30 (skipped) and 02:00 BST fall at 01:00 UTC; 02:00 is later in the
    # day, so it decides, as it does on every other Sunday.
    s = WeeklySchedule(["sun 01:30 boost", "sun 02:00 comfort", "sat 20:00 eco"], LONDON)
    assert s.mode_at(utc(2026, 3, 29, 1, 0)) == "comfort"
    assert s.next_change(utc(2026, 3, 28, 20, 0)) == (utc(2026, 3, 29, 1, 0), "comfort")


def test_0230_exists_in_london_on_the_spring_forward_day() -> None:
    # London's gap is 01:00-01:59 local; 02:30 BST = 01:30 UTC.
    s = WeeklySchedule(["sun 02:30 comfort", "sat 20:00 eco"], LONDON)
    assert s.next_change(utc(2026, 3, 28, 20, 0)) == (utc(2026, 3, 29, 1, 30), "comfort")


def test_fall_back_keeps_local_time_and_an_ambiguous_time_fires_once() -> None:
    s = WeeklySchedule(
        ["sun 01:30 eco", "sun 01:45 comfort", "mon-sun 07:00 boost", "sat 20:00 frost"],
        LONDON,
    )
    # 25 October: 01:30 and 01:45 BST (the first occurrences) = 00:30 and 00:45 UTC.
    assert s.next_change(utc(2026, 10, 24, 20, 0)) == (utc(2026, 10, 25, 0, 30), "eco")
    assert s.mode_at(utc(2026, 10, 25, 0, 45)) == "comfort"
    # Local 01:30 again (GMT) = 01:30 UTC: the rule does not fire a second time.
    assert s.mode_at(utc(2026, 10, 25, 1, 35)) == "comfort"
    # 07:00 GMT = 07:00 UTC, where the day before 07:00 BST was 06:00 UTC.
    assert s.mode_at(utc(2026, 10, 24, 6, 0)) == "boost"
    assert s.next_change(utc(2026, 10, 25, 1, 35)) == (utc(2026, 10, 25, 7, 0), "boost")
    assert s.mode_at(utc(2026, 10, 25, 6, 59)) == "comfort"
