"""A session record (start, end, title, expected attendance) and the parser of a list of them:
the config's `[[sessions]]` and the JSON list pushed on `<base>/cmd/sessions` share this format.
The calendar that holds and polls them is agent.room.sessions; the records sit in config so the
loader checks `[[sessions]]` without importing the room above it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional
from zoneinfo import ZoneInfo


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
