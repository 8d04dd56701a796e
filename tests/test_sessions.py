"""The session calendar (agent/room/sessions.py) and the per-session report (session_report.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.common.state_store import StateStore
from agent.config.sessions import CalendarError, Session, parse_records
from agent.room.comfort import grade
from agent.room.session_report import SessionRecorder
from agent.room.sessions import SessionCalendar, parse_ics, parse_pushed

ICS = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Town of Example//Council//EN\r
BEGIN:VEVENT\r
UID:council-1@example.org\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260105T180000\r
DTEND;TZID=Europe/Berlin:20260105T210000\r
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4\r
EXDATE;TZID=Europe/Berlin:20260112T180000\r
SUMMARY:Council session\r
X-EXPECTED-ATTENDANCE:45\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:holiday@example.org\r
DTSTAMP:20260101T000000Z\r
DTSTART;VALUE=DATE:20260106\r
SUMMARY:Epiphany\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:press@example.org\r
DTSTAMP:20260101T000000Z\r
DTSTART:20260107T090000Z\r
DURATION:PT90M\r
SUMMARY:Press briefing\r
END:VEVENT\r
END:VCALENDAR\r
"""
NOW = dt.datetime(2026, 1, 4, tzinfo=dt.timezone.utc).timestamp()


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


def test_ics_weekly_series_with_an_exception_and_a_duration() -> None:
    sessions = parse_ics(ICS, NOW, "Europe/Berlin")
    # Mondays 5, 19, 26 January at 18:00 CET (17:00 UTC); the 12th is cancelled (EXDATE);
    # the all-day holiday is not a session; the briefing lasts 90 minutes.
    assert [(s.start, s.end, s.title) for s in sessions] == [
        (utc(2026, 1, 5, 17), utc(2026, 1, 5, 20), "Council session"),
        (utc(2026, 1, 7, 9), utc(2026, 1, 7, 10, 30), "Press briefing"),
        (utc(2026, 1, 19, 17), utc(2026, 1, 19, 20), "Council session"),
        (utc(2026, 1, 26, 17), utc(2026, 1, 26, 20), "Council session"),
    ]
    assert sessions[0].expected == 45 and sessions[1].expected is None


def test_bad_calendars_are_named() -> None:
    with pytest.raises(CalendarError, match="not an iCalendar"):
        parse_ics(b"hello", NOW)
    with pytest.raises(CalendarError, match=r"sessions\[0\]\.end: must be after start"):
        parse_records([{"start": "2026-01-05T18:00:00+01:00", "end": "2026-01-05T17:00:00+01:00"}])
    with pytest.raises(CalendarError, match=r"sessions\[0\]\.start: 'monday'"):
        parse_records([{"start": "monday", "end": "2026-01-05T17:00:00"}])
    with pytest.raises(CalendarError, match="not JSON"):
        parse_pushed(b"{")
    with pytest.raises(CalendarError, match=r"sessions\[0\]\.room: unknown key"):
        parse_pushed(
            b'[{"start": "2026-01-05T18:00:00Z", "end": "2026-01-05T19:00:00Z", "room": 1}]'
        )


def test_local_times_follow_the_configured_zone_and_sources_replace_their_own() -> None:
    config = parse_records([{"start": "2026-07-01T10:00:00", "end": "2026-07-01T12:00:00",
                             "title": "Committee", "expected": 12}], "Europe/Berlin")  # fmt: skip
    assert config[0].start == utc(2026, 7, 1, 8)  # CEST, UTC+2
    cal = SessionCalendar(config)
    cal.replace(
        "mqtt", parse_pushed(b'[{"start": "2026-07-02T08:00:00Z", "end": "2026-07-02T09:00:00Z"}]')
    )
    assert len(cal.sessions) == 2
    cal.replace("mqtt", [])
    assert [s.title for s in cal.sessions] == ["Committee"]
    assert cal.current(utc(2026, 7, 1, 9)) == config[0]
    assert cal.wants_comfort(utc(2026, 7, 1, 7, 30), preheat_s=3600)
    assert not cal.wants_comfort(utc(2026, 7, 1, 6, 59), preheat_s=3600)


def run(recorder: SessionRecorder, session: Session, t0: float, t1: float, out: list) -> None:
    t = t0
    while t <= t1:
        current = session if session.start <= t < session.end else None
        inside = current is not None
        co2 = 900.0 if inside and t < session.start + 1800 else (1500.0 if inside else 450.0)
        g = grade(22.0, co2, 420.0, "heating")
        energy = 100.0 + (t - session.start) / 3600 * 2.0  # a meter's kWh counter, 2 kW load
        for end, report in recorder.update(t, current, 60.0, co2 if inside else None,
                                           g.overall, 30 if inside else 0, energy):  # fmt: skip
            out.append(report)
            recorder.reported(end)
        t += 60


def test_a_session_report_survives_a_restart(tmp_path) -> None:
    s = Session(utc(2026, 1, 5, 17), utc(2026, 1, 5, 18), "Council session")
    path = tmp_path / "control.json"
    out: list = []
    run(SessionRecorder(StateStore(path)), s, s.start - 600, s.start + 1800, out)
    assert out == []  # still in session when the agent stops
    # A new process: the same store, the session goes on and ends.
    recorder = SessionRecorder(StateStore(path))
    run(recorder, s, s.start + 1860, s.end + 600, out)
    assert len(out) == 1
    r = out[0]
    assert (r["start"], r["end"]) == ("2026-01-05T17:00:00Z", "2026-01-05T18:00:00Z")
    # 30 minutes at 900 ppm then 30 at 1500: mean 1200, peak 1500; 1500 − 420 = 1080 above
    # outdoor is category III, so 30 minutes outside category II.
    assert (r["co2_mean"], r["co2_peak"]) == (1200, 1500)
    # saved every minute, so the restart lost none of them.
    assert r["minutes_outside_category_ii"] == 30.0
    # Counter read at the first and the last minute of the session: 59 minutes at 2 kW.
    assert r["energy_kwh"] == pytest.approx(2.0 * 59 / 60, abs=0.001)
    assert r["complete"] is True
    assert r["peak_occupancy_estimate"] == 30
    # Nothing more once reported, across another restart.
    again: list = []
    run(SessionRecorder(StateStore(path)), s, s.end + 660, s.end + 1200, again)
    assert again == []


def test_a_session_entirely_missed_is_still_reported_as_incomplete(tmp_path) -> None:
    recorder = SessionRecorder(StateStore(tmp_path / "c.json"))
    s = Session(utc(2026, 1, 5, 17), utc(2026, 1, 5, 18), "Council session")
    [(end, report)] = recorder.missed([s])
    assert end == s.end and report["complete"] is False and report["co2_mean"] is None
    recorder.reported(end)
    assert recorder.missed([s]) == []
