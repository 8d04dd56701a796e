"""A room's indoor-environment category after EN 16798-1, live and as shares of occupied time.

Two quantities are graded, each into category I (high expectation) to IV (outside III):

- operative temperature, against a band per season. The defaults are the design ranges for
  offices and similar rooms with sedentary activity (~1.2 met) that EN 16798-1:2019 (annex B)
  carries over from EN 15251:2007 (table A.3): heating season (~1.0 clo) I 21.0-23.0,
  II 20.0-24.0, III 19.0-25.0 °C; cooling season (~0.5 clo) I 23.5-25.5, II 23.0-26.0,
  III 22.0-27.0 °C. National annexes may differ: the bands are configurable.
- CO2 above outdoor: I ≤ 550, II ≤ 800, III ≤ 1350 ppm (EN 16798-1:2019, annex B, the default
  values for a standard person).

Bounds are inclusive: 550 ppm above outdoor is still category I, 550.1 is II. The overall
category is the worse of the two. This is supplementary information for the people running a
room, not a certified measurement (docs/comfort.md says what it means and what it does not).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

CATEGORIES = ("I", "II", "III", "IV")
CO2_ABOVE_OUTDOOR = (550.0, 800.0, 1350.0)  # ppm: upper bounds of I, II, III
TEMPERATURE_BANDS = {  # season -> (low, high) of I, II, III in °C
    "heating": ((21.0, 23.0), (20.0, 24.0), (19.0, 25.0)),
    "cooling": ((23.5, 25.5), (23.0, 26.0), (22.0, 27.0)),
}
# Above this running mean of the outdoor temperature the room is judged in its cooling-season
# (summer clothing) band; EN 16798-1's adaptive method uses the same running mean.
COOLING_SEASON_ABOVE = 15.0  # °C
QUANTITIES = ("operative_temperature", "co2")


def co2_category(indoor_ppm: float, outdoor_ppm: float) -> str:
    above = indoor_ppm - outdoor_ppm
    for name, limit in zip(CATEGORIES, CO2_ABOVE_OUTDOOR):
        if above <= limit:
            return name
    return "IV"


def temperature_category(
    operative: float, season: str, bands: Optional[dict[str, tuple]] = None
) -> str:
    for name, (low, high) in zip(CATEGORIES, (bands or TEMPERATURE_BANDS)[season]):
        if low <= operative <= high:
            return name
    return "IV"


def season_of(outdoor_running_mean: Optional[float], month: int) -> str:
    """Cooling season when the outdoor running mean is above 15 °C; without an outdoor
    temperature, May to September (northern hemisphere)."""
    if outdoor_running_mean is not None:
        return "cooling" if outdoor_running_mean > COOLING_SEASON_ABOVE else "heating"
    return "cooling" if 5 <= month <= 9 else "heating"


def worst(*categories: Optional[str]) -> Optional[str]:
    known = [c for c in categories if c is not None]
    return max(known, key=CATEGORIES.index) if known else None


@dataclass(frozen=True)
class Grade:
    """One instant's grading; a quantity without a fresh reading has category None."""

    operative_temperature: Optional[float]
    co2: Optional[float]
    outdoor_co2: float
    season: str
    temperature_category: Optional[str]
    co2_category: Optional[str]

    @property
    def overall(self) -> Optional[str]:
        return worst(self.temperature_category, self.co2_category)


def grade(
    operative_temperature: Optional[float],
    co2: Optional[float],
    outdoor_co2: float,
    season: str,
    bands: Optional[dict[str, tuple]] = None,
) -> Grade:
    return Grade(
        operative_temperature,
        co2,
        outdoor_co2,
        season,
        None
        if operative_temperature is None
        else temperature_category(operative_temperature, season, bands),
        None if co2 is None else co2_category(co2, outdoor_co2),
    )


@dataclass
class DayShares:
    """Occupied seconds per quantity (and "overall") per category, for one local day."""

    occupied_s: float = 0.0
    seconds: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(CATEGORIES, 0.0))
    )

    def add(self, g: Grade, dt: float) -> None:
        self.occupied_s += dt
        for quantity, category in (
            ("operative_temperature", g.temperature_category),
            ("co2", g.co2_category),
            ("overall", g.overall),
        ):
            if category is not None:
                self.seconds[quantity][category] += dt

    def shares(self) -> dict[str, dict[str, float]]:
        """Per quantity, the fraction of occupied time in each category (0 when never occupied);
        time a quantity had no reading is in none, so a quantity's shares may sum below 1."""
        total = self.occupied_s
        return {
            q: {c: (s[c] / total if total else 0.0) for c in CATEGORIES}
            for q, s in self.seconds.items()
        }


class ComfortTracker:
    """Integrates gradings over occupied time into per-day shares. Feed it (local date, grade,
    occupied, seconds since the last call) as often as the caller likes; only occupied time
    counts toward the shares, as EN 16798-1 assesses a room in use."""

    def __init__(self, keep_days: int = 7) -> None:
        self.days: dict[str, DayShares] = {}
        self.keep_days = keep_days

    def add(self, day: str, g: Grade, occupied: bool, dt: float) -> None:
        if not occupied or dt <= 0:
            return
        self.days.setdefault(day, DayShares()).add(g, dt)
        for old in sorted(self.days)[: -self.keep_days]:
            del self.days[old]

    def shares(self, day: str) -> dict[str, dict[str, float]]:
        return self.days.get(day, DayShares()).shares()
