"""A weekly schedule of modes, in the building's own time zone.

Rules are written the way a facility manager says them: "mon-fri 07:30 comfort". A rule's time is
local wall-clock time, so "07:00" is 07:00 on both sides of a daylight-saving change. On the
spring-forward day a time inside the skipped hour does not exist; its rule takes effect at the
first instant after the gap (the moment the clocks jump). On the autumn day a time inside the
repeated hour happens twice; its rule takes effect at the first occurrence only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.common.suggest import hint, timezone_problem

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_MODE = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Rule:
    """One parsed rule: from `minute` after local midnight on each of `days`, run `mode`."""

    days: frozenset[int]  # 0 = Monday, as date.weekday()
    minute: int
    mode: str
    text: str  # as written, for error messages and reasons

    @property
    def hhmm(self) -> str:
        return f"{self.minute // 60:02d}:{self.minute % 60:02d}"


def parse_rule(text: str, modes: Optional[Collection[str]] = None) -> Rule:
    """Parses "mon-fri 07:30 comfort"; raises ValueError naming the rule and the problem."""

    def bad(problem: str) -> ValueError:
        return ValueError(f"schedule rule {text!r}: {problem}")

    if not isinstance(text, str):
        raise ValueError(f"schedule rule {text!r}: must be a string like 'mon-fri 07:30 comfort'")
    parts = text.lower().split()
    if len(parts) != 3:
        raise bad("expected three parts, DAYS HH:MM MODE, e.g. 'mon-fri 07:30 comfort'")
    day_text, time_text, mode = parts
    days: set[int] = set()
    for item in day_text.split(","):
        first, sep, last = item.partition("-")
        start, end = _day(first, text), _day(last, text) if sep else None
        if end is None:
            days.add(start)
        else:
            # A range may run over the weekend: "fri-mon" is fri, sat, sun, mon.
            days.update((start + i) % 7 for i in range((end - start) % 7 + 1))
    m = _TIME.fullmatch(time_text)
    if m is None:
        raise bad(f"bad time {time_text!r}: expected HH:MM, e.g. 07:30")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if hours > 23 or minutes > 59:
        raise bad(f"bad time {time_text!r}: hours run 00-23 and minutes 00-59")
    if _MODE.fullmatch(mode) is None:
        raise bad(f"bad mode name {mode!r}: letters, digits and _, starting with a letter")
    if modes is not None and mode not in modes:
        raise bad(f"unknown mode {mode!r} (known: {', '.join(sorted(modes))})")
    return Rule(frozenset(days), hours * 60 + minutes, mode, text)


def _day(name: str, text: str) -> int:
    if name not in DAYS:
        raise ValueError(
            f"schedule rule {text!r}: unknown day {name!r}{hint(name, DAYS)} "
            f"(days are {', '.join(DAYS)}; ranges like mon-fri; lists like sat,sun)"
        )
    return DAYS.index(name)


class WeeklySchedule:
    """Which mode applies at any instant, from rules repeating every week."""

    def __init__(
        self, rules: Iterable[str], tz_name: str, modes: Optional[Collection[str]] = None
    ) -> None:
        if isinstance(rules, str):
            raise ValueError("schedule: rules must be a list of strings, one rule each")
        try:
            self.tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"schedule: {timezone_problem(tz_name)}") from None
        self.tz_name = tz_name
        self.rules = tuple(parse_rule(text, modes) for text in rules)
        if not self.rules:
            raise ValueError("schedule: no rules; give at least one, e.g. 'mon-sun 00:00 eco'")
        seen: dict[tuple[int, int], Rule] = {}
        for rule in self.rules:
            for day in sorted(rule.days):
                other = seen.setdefault((day, rule.minute), rule)
                if other.mode != rule.mode:
                    raise ValueError(
                        f"schedule rules {other.text!r} and {rule.text!r} both set "
                        f"{DAYS[day]} {rule.hhmm}, to {other.mode} and to {rule.mode}"
                    )
        self.modes = frozenset(rule.mode for rule in self.rules)
        # Per weekday, (minute, rule) in time order; same-time duplicates agree on the mode.
        self._by_day = tuple(
            sorted(((minute, r) for (d, minute), r in seen.items() if d == day), key=_first)
            for day in range(7)
        )

    def mode_at(self, wall_epoch: float) -> str:
        """The mode of the last rule at or before this instant (looking back over the week)."""
        return self.rule_at(wall_epoch).mode

    def rule_at(self, wall_epoch: float) -> Rule:
        """The rule in force at this instant, for reasons that say which rule decided."""
        today = datetime.fromtimestamp(wall_epoch, self.tz).date()
        found: Optional[Rule] = None
        for instant, rule in self._occurrences(today - timedelta(days=8), today):
            if instant > wall_epoch:
                break
            found = rule
        assert found is not None  # every rule recurs within any 7 days, and there is one
        return found

    def next_change(self, wall_epoch: float) -> Optional[tuple[float, str]]:
        """(epoch, mode) of the next instant after this one at which the mode changes.

        None when the schedule only ever says one mode: nothing will change.
        """
        current = self.mode_at(wall_epoch)
        today = datetime.fromtimestamp(wall_epoch, self.tz).date()
        occurrences = self._occurrences(today - timedelta(days=1), today + timedelta(days=8))
        for i, (instant, rule) in enumerate(occurrences):
            last_at_instant = i + 1 == len(occurrences) or occurrences[i + 1][0] != instant
            if instant > wall_epoch and last_at_instant and rule.mode != current:
                return instant, rule.mode
        return None

    def _occurrences(self, first: date, last: date) -> list[tuple[float, Rule]]:
        """Every rule's instants on the local dates first..last, in order. Two rules can meet
        at one instant (one inside a spring-forward gap, one at its end): the later-written
        time sorts last, so it wins, as it would on any other day."""
        keyed: list[tuple[float, int, int, Rule]] = []
        day = first
        while day <= last:
            for minute, rule in self._by_day[day.weekday()]:
                keyed.append((self._instant(day, minute), day.toordinal(), minute, rule))
            day += timedelta(days=1)
        keyed.sort(key=lambda k: k[:3])
        return [(instant, rule) for instant, _, _, rule in keyed]

    def _instant(self, day: date, minute: int) -> float:
        # fold=0 picks the first of an ambiguous pair, as wanted.
        local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.tz)
        epoch = local.timestamp()
        if datetime.fromtimestamp(epoch, self.tz).replace(tzinfo=None) == local.replace(
            tzinfo=None
        ):
            return epoch
        # Inside a spring-forward gap. zoneinfo reads such a time with the offset from before
        # the change, which lands after the gap by its length; with fold=1 it lands before.
        # The first valid instant after the written time is the change itself: find it.
        return _transition(self.tz, local.replace(fold=1).timestamp(), epoch)


def _first(item: tuple[int, Rule]) -> int:
    return item[0]


def _transition(tz: ZoneInfo, before: float, after: float) -> float:
    """The instant, to the second, at which tz's UTC offset changes between the two."""
    lo, hi = math.floor(before), math.ceil(after)
    offset_after = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == offset_after:
            hi = mid
        else:
            lo = mid
    return float(hi)
