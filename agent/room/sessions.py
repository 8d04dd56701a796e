"""A room's session calendar: council sessions, meetings, events, from three sources.

- the config: `[[sessions]]` with start, end (ISO 8601 with an offset, or local to
  control.timezone), optional title and expected attendance;
- an iCalendar file or URL (`[calendar] ics = ...`), parsed with the `icalendar` library;
  recurring events (RRULE, EXDATE) are expanded with dateutil over the horizon;
- pushed over MQTT on `<base>/cmd/sessions` as a JSON list of the same records.

Each source replaces its own sessions only; control asks "is a session on (or about to start)
at t", the session reports ask for the one that has just ended.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Optional
from zoneinfo import ZoneInfo

from agent.config.sessions import CalendarError, Session, parse_records

HORIZON_DAYS = 60  # recurring events are expanded this far ahead (and as far back)


def parse_ics(data: bytes, now: float, tz_name: str = "UTC", source: str = "ics") -> list[Session]:
    """VEVENTs of an iCalendar (RFC 5545) text between now ± HORIZON_DAYS; recurrences expanded.
    An event's attendance may be given as X-EXPECTED-ATTENDANCE (our extension)."""
    import icalendar  # type: ignore[import-untyped, unused-ignore]  # untyped on 3.9 (6.3.2)
    from dateutil.rrule import rruleset, rrulestr

    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as e:
        raise CalendarError(f"not an iCalendar file: {e}") from None
    tz = ZoneInfo(tz_name)
    lo = dt.datetime.fromtimestamp(now - HORIZON_DAYS * 86400, dt.timezone.utc)
    hi = dt.datetime.fromtimestamp(now + HORIZON_DAYS * 86400, dt.timezone.utc)
    out: list[Session] = []
    for event in calendar.walk("VEVENT"):
        start = event.decoded("DTSTART", None)
        if not isinstance(start, dt.datetime):
            continue  # all-day entries (holidays, notes) are not sessions
        if start.tzinfo is None:
            start = start.replace(tzinfo=tz)
        end = event.decoded("DTEND", None)
        if isinstance(end, dt.datetime):
            length = (end if end.tzinfo else end.replace(tzinfo=tz)) - start
        else:
            length = event.decoded("DURATION", dt.timedelta(hours=1))
        title = str(event.get("SUMMARY", ""))
        expected_raw = event.get("X-EXPECTED-ATTENDANCE")
        expected = int(str(expected_raw)) if expected_raw is not None else None
        starts: Iterable[dt.datetime] = [start]
        if "RRULE" in event:
            rules = rruleset()
            raw = event["RRULE"].to_ical()
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            rules.rrule(rrulestr(text, dtstart=start))
            exdates = event.get("EXDATE", [])
            for ex in exdates if isinstance(exdates, list) else [exdates]:
                for d in ex.dts:
                    moment = d.dt if d.dt.tzinfo else d.dt.replace(tzinfo=tz)
                    rules.exdate(moment)
            starts = rules.between(lo, hi, inc=True)
        for s in starts:
            if lo <= s <= hi:
                out.append(
                    Session(s.timestamp(), (s + length).timestamp(), title, expected, source)
                )
    return sorted(out)


def parse_pushed(payload: bytes, tz_name: str = "UTC") -> list[Session]:
    """A JSON list pushed over MQTT; CalendarError for anything else."""
    try:
        items = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise CalendarError(f"sessions: not JSON: {e}") from None
    return parse_records(items, tz_name, source="mqtt")


class SessionCalendar:
    def __init__(self, sessions: Sequence[Session] = ()) -> None:
        self._by_source: dict[str, list[Session]] = {}
        for s in sessions:
            self._by_source.setdefault(s.source, []).append(s)

    def replace(self, source: str, sessions: Sequence[Session]) -> None:
        self._by_source[source] = sorted(sessions)

    @property
    def sessions(self) -> list[Session]:
        return sorted(s for group in self._by_source.values() for s in group)

    def current(self, t: float) -> Optional[Session]:
        return next((s for s in self.sessions if s.start <= t < s.end), None)

    def next_after(self, t: float) -> Optional[Session]:
        return next((s for s in self.sessions if s.start > t), None)

    def wants_comfort(self, t: float, preheat_s: float = 0.0) -> bool:
        """Comfort from preheat_s before a session to its end; setback otherwise."""
        return any(s.start - preheat_s <= t < s.end for s in self.sessions)

    def near_edge(self, t: float, window_s: float) -> bool:
        """Whether a session starts or ends within window_s of t: when people come and go."""
        return any(abs(t - s.start) < window_s or abs(t - s.end) < window_s
                   for s in self.sessions)  # fmt: skip

    def ended_between(self, a: float, b: float) -> list[Session]:
        return [s for s in self.sessions if a < s.end <= b]
