"""The `[faults]` table and `[room.optimum_start]` of a node's config (docs/config.md)::

[faults]                      # fault detection runs on every node with zones or a [room];
enabled = true                # false switches it off
window_open_minutes = 10
[faults.disagree]             # merged over the defaults (temperature 2 K, humidity 10 %RH,
temperature = 1.5             # co2 250 ppm)

[room.optimum_start]          # each zone's heating (and cooling) starts just in time
enabled = true                # false: the fixed room.preheat_minutes, as without the table
max_lead_minutes = 360

The settings dataclasses (FaultConfig, OptimumStartConfig) live here, below the analytics that
use them (agent.analytics.faults, agent.analytics.optimum_start), so the loader builds and checks
them without importing a layer above config.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from agent.config.control import RecordError, parse_record

SECTIONS = ("faults",)


def _default_disagree() -> dict[str, float]:
    return {"temperature": 2.0, "humidity": 10.0, "co2": 250.0}


@dataclass(frozen=True)
class FaultConfig:
    """Thresholds (config: [faults]); a rule with its time or count at 0 is off."""

    window_open_minutes: float = 10.0
    short_cycle_starts: int = 6  # more starts than this within the window is a fault
    short_cycle_window_minutes: float = 60.0
    unmet_minutes: float = 60.0
    unmet_margin: float = 1.0  # K short of the setpoint that counts as unmet
    disagree_minutes: float = 30.0
    disagree: Mapping[str, float] = dataclasses.field(default_factory=_default_disagree)
    frozen_readings: int = 30
    # Quantities whose raw value never holds still in a working sensor; light at night, PM in
    # clean air or a VOC index at its baseline may rightly repeat, so they are not judged.
    frozen_quantities: tuple[str, ...] = ("temperature", "humidity", "pressure", "co2")
    meter_minutes: float = 5.0
    meter_on_min_w: float = 5.0  # on, and drawing less than this: no load behind the relay
    meter_off_max_w: float = 20.0  # off, and drawing more than this: welded contact, bypass
    stale_seconds: float = 600.0  # readings older than this are not compared

    def __post_init__(self) -> None:
        numbers = ("window_open_minutes", "short_cycle_window_minutes", "unmet_minutes",
                   "unmet_margin", "disagree_minutes", "meter_minutes", "meter_on_min_w",
                   "meter_off_max_w", "stale_seconds")  # fmt: skip
        for name in numbers:
            value = getattr(self, name)
            if not finite(value) or value < 0:
                raise ValueError(f"{name}: must be a number >= 0, got {value!r}")
        for name in ("short_cycle_starts", "frozen_readings"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: must be a whole number >= 0, got {value!r}")
        for quantity, limit in self.disagree.items():
            if not finite(limit) or limit <= 0:
                raise ValueError(f"disagree.{quantity}: must be a number > 0, got {limit!r}")
        object.__setattr__(self, "frozen_quantities", tuple(self.frozen_quantities))


@dataclass(frozen=True)
class OptimumStartConfig:
    """Thresholds of one zone's optimum start (config: [zones.optimum_start])."""

    fixed_lead_minutes: float = 120.0  # until the model is learned, or when it is unusable
    max_lead_minutes: float = 360.0  # never start earlier than this before a session
    latest_start_minutes: float = 15.0  # never start later than this before a session
    min_episodes: int = 3  # warm-ups learned before the model is trusted
    keep_episodes: int = 30  # the newest warm-ups kept for the fit
    min_rate: float = 0.2  # K/h: a learned rate below this is not believed
    safety: float = 1.05  # lead times are stretched by this: late is worse than early
    stop_band: float = 0.5  # K below the setpoint the room may drift to by a session's end
    max_early_stop_minutes: float = 60.0
    # Stop conditioning before a session's end when the learned drift keeps the room within
    # stop_band of the setpoint until the end (PreheatPlanner applies it).
    early_stop: bool = False
    # "line": the rate against the indoor-outdoor difference. "need": the warm-up's hours
    # against the kelvins to gain (and the difference): a room with heavy mass gains its first
    # kelvin in minutes (the air) and the later ones slowly (the walls), which a single rate
    # cannot say; see need_hours().
    model: str = "line"

    def __post_init__(self) -> None:
        if self.model not in ("line", "need"):
            raise ValueError(f"model: must be line or need, got {self.model!r}")
        for field in ("fixed_lead_minutes", "max_lead_minutes", "min_rate", "safety"):
            value = getattr(self, field)
            if not finite(value) or value <= 0:
                raise ValueError(f"{field}: must be a number > 0, got {value!r}")
        for field in ("latest_start_minutes", "stop_band", "max_early_stop_minutes"):
            value = getattr(self, field)
            if not finite(value) or value < 0:
                raise ValueError(f"{field}: must be a number >= 0, got {value!r}")
        for field in ("min_episodes", "keep_episodes"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field}: must be a whole number >= 1, got {value!r}")
        if not isinstance(self.early_stop, bool):
            raise ValueError(f"early_stop: must be true or false, got {self.early_stop!r}")
        if self.latest_start_minutes > self.max_lead_minutes:
            raise ValueError("latest_start_minutes: must not exceed max_lead_minutes")
        if self.fixed_lead_minutes > self.max_lead_minutes:
            raise ValueError("fixed_lead_minutes: must not exceed max_lead_minutes")


def finite(value: object) -> bool:
    """A real number: not a bool, NaN or infinite (the analytics judge their inputs by it too)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_faults(
    data: Mapping[str, Any], error: Callable[[str, str], Exception]
) -> Optional[FaultConfig]:
    """[faults] -> its thresholds; None when switched off (enabled = false)."""
    table = data.get("faults", {})
    if not isinstance(table, dict):
        raise error("faults", "must be a table ([faults])")
    table = dict(table)
    enabled = table.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise error("faults.enabled", f"must be true or false, got {enabled!r}")
    disagree = table.pop("disagree", {})
    if not isinstance(disagree, dict):
        raise error("faults.disagree", "must be a table of quantity = limit, e.g. "
                    "[faults.disagree] temperature = 2.0")  # fmt: skip
    try:
        config = parse_record(table, FaultConfig)[0]
        config = dataclasses.replace(config, disagree={**_default_disagree(), **disagree})
    except RecordError as e:
        raise error("faults" + (f".{e.key}" if e.key else ""), e.message) from None
    except ValueError as e:  # from the disagree limits
        raise error("faults", str(e)) from None
    return config if enabled else None


def parse_optimum_start(
    table: Any, preheat_minutes: float, error: Callable[[str, str], Exception]
) -> Optional[OptimumStartConfig]:
    """[room.optimum_start] -> the learner's config (its fixed lead, unless given, the room's
    preheat_minutes); None when the table is absent or switched off."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise error("room.optimum_start", "must be a table ([room.optimum_start])")
    table = dict(table)
    enabled = table.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise error("room.optimum_start.enabled", f"must be true or false, got {enabled!r}")
    table.setdefault("fixed_lead_minutes", max(preheat_minutes, 1.0))
    table.setdefault("model", "need")  # closer than the line in the room benchmark's month
    try:
        config = parse_record(table, OptimumStartConfig)[0]
    except RecordError as e:
        raise error("room.optimum_start" + (f".{e.key}" if e.key else ""), e.message) from None
    return config if enabled else None
