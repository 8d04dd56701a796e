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
from dataclasses import dataclass
from typing import Any, Optional
from zoneinfo import ZoneInfo

HORIZON_DAYS = 60  # recurring events are expanded this far ahead (and as far back)


class CalendarError(ValueError):
    """A calendar that cannot be read: the message says where and why."""


@dataclass(frozen=True, order=True)
class Session:
    start: float  # UTC epoch seconds
    end: float
    title: str = ""
    expected: Optional[int] = None  # attendance the organiser announced, if any
    source: str = "config"

    def as_json(self) -> dict[str, Any]:
        return {"start": _iso(self.start), "end": _iso(self.end), "title": self.title,
                "expected": self.expected, "source": self.source}  # fmt: skip


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _when(value: Any, tz: dt.tzinfo, where: str) -> float:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise CalendarError(f"{where}: {value!r} is not an ISO 8601 date and time "
                                "(e.g. 2026-03-02T18:00:00+01:00)") from None  # fmt: skip
    else:
        raise CalendarError(f"{where}: must be a date and time, got {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def parse_records(items: Any, tz_name: str = "UTC", source: str = "config") -> list[Session]:
    """Sessions from a list of tables or JSON objects; CalendarError names the bad entry."""
    if not isinstance(items, list):
        raise CalendarError("sessions: must be a list of {start, end, title, expected}")
    tz = ZoneInfo(tz_name)
    out = []
    for i, item in enumerate(items):
        where = f"sessions[{i}]"
        if not isinstance(item, dict):
            raise CalendarError(f"{where}: must be a table with start and end")
        unknown = set(item) - {"start", "end", "title", "expected"}
        if unknown:
            raise CalendarError(f"{where}.{sorted(unknown)[0]}: unknown key (known keys here: "
                                "end, expected, start, title)")  # fmt: skip
        for key in ("start", "end"):
            if key not in item:
                raise CalendarError(f"{where}.{key}: is required")
        start, end = (
            _when(item["start"], tz, f"{where}.start"),
            _when(item["end"], tz, f"{where}.end"),
        )
        if end <= start:
            raise CalendarError(f"{where}.end: must be after start")
        expected = item.get("expected")
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)
                                     or expected < 0):  # fmt: skip
            raise CalendarError(f"{where}.expected: must be a whole number ≥ 0, got {expected!r}")
        title = item.get("title", "")
        if not isinstance(title, str):
            raise CalendarError(f"{where}.title: must be a string")
        out.append(Session(start, end, title, expected, source))
    return sorted(out)


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
