"""The agent's room monitor (agent/room/monitor.py): calendar edges for the zones, the calendar
read from a file and from a URL (a real local HTTP server), and what it publishes."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from pathlib import Path

import pytest

from agent.common.state_store import MemoryStore
from agent.config.room import RoomConfig
from agent.config.sessions import CalendarError, Session
from agent.room.monitor import RoomMonitor

T0 = dt.datetime(2026, 1, 5, 6, tzinfo=dt.timezone.utc).timestamp()
CALENDAR = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Example//EN\r
BEGIN:VEVENT\r
UID:a@example.org\r
DTSTAMP:20260101T000000Z\r
DTSTART:20260105T170000Z\r
DTEND:20260105T200000Z\r
SUMMARY:Council session\r
END:VEVENT\r
END:VCALENDAR\r
"""


def monitor(tmp_path: Path, sessions=(), **room) -> RoomMonitor:
    config = RoomConfig(volume_m3=60.0, seats=12, co2_sensor="air", temperature_sensor="climate",
                        stage_airflow_m3h=(180.0, 360.0), **room)  # fmt: skip
    return RoomMonitor(config, tuple(sessions), tmp_path, MemoryStore(), "UTC")


def test_zones_follow_the_calendar_with_preheat(tmp_path: Path) -> None:
    s = Session(T0 + 3 * 3600, T0 + 5 * 3600, "Committee")
    m = monitor(tmp_path, [s], preheat_minutes=60)
    readings = {("air", "co2"): (800.0, 0.0), ("climate", "temperature"): (21.5, 0.0)}
    modes = []
    for minute in range(0, 6 * 60, 5):
        t = T0 + minute * 60
        out = m.tick(t, 0.0, lambda d, q: readings.get((d, q)), None, 0, None)
        if out.zone_mode is not None:
            modes.append((minute, out.zone_mode))
    # eco at the start, comfort an hour before the session (120 min in), eco at its end (300).
    assert modes == [(0, "eco"), (120, "comfort"), (300, "eco")]
    m.close()


def test_comfort_state_grades_fresh_readings_only(tmp_path: Path) -> None:
    m = monitor(tmp_path)
    fresh = {("air", "co2"): (1300.0, 1000.0), ("climate", "temperature"): (19.5, 1000.0)}
    out = m.tick(T0, 1000.0, lambda d, q: fresh.get((d, q)), True, 1, None)
    assert out.comfort is not None
    # 880 ppm above 420 is III; 19.5 °C in the heating season is III.
    assert out.comfort["co2"]["category"] == "III"
    assert out.comfort["operative_temperature"]["category"] == "III"
    assert out.comfort["category"] == "III" and out.comfort["season"] == "heating"
    # Ten minutes later with nothing new: not graded.
    out = m.tick(T0 + 700, 1700.0, lambda d, q: fresh.get((d, q)), True, 1, None)
    assert out.comfort is not None and out.comfort["category"] is None
    m.close()


def test_calendar_from_a_file_and_a_url(tmp_path: Path) -> None:
    path = tmp_path / "council.ics"
    path.write_bytes(CALENDAR)
    m = monitor(tmp_path, calendar=str(path))
    assert m.fetch_calendar(T0) == 1
    assert m.calendar.sessions[0].title == "Council session"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = CALENDAR if self.path == "/council.ics" else b"nope"
            self.send_response(200 if self.path == "/council.ics" else 404)
            self.send_header("Content-Type", "text/calendar")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        (tmp_path / "w").mkdir()
        web = monitor(tmp_path / "w", calendar=f"{url}/council.ics")
        assert web.fetch_calendar(T0) == 1
        web.config = RoomConfig(volume_m3=60.0, calendar=f"{url}/missing.ics")
        with pytest.raises(CalendarError, match="cannot fetch"):
            web.fetch_calendar(T0)
        assert len(web.calendar.sessions) == 1  # what was read before stays
        web.close()
    finally:
        server.shutdown()
    m.close()
