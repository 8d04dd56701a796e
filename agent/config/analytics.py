"""The `[faults]` table and `[room.optimum_start]` of a node's config (docs/config.md)::

[faults]                      # fault detection runs on every node with zones or a [room];
enabled = true                # false switches it off
window_open_minutes = 10
[faults.disagree]             # merged over the defaults (temperature 2 K, humidity 10 %RH,
temperature = 1.5             # co2 250 ppm)

[room.optimum_start]          # each zone's heating (and cooling) starts just in time
enabled = true                # false: the fixed room.preheat_minutes, as without the table
max_lead_minutes = 360
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Callable, Optional

from agent.analytics.faults import FaultConfig, _default_disagree
from agent.analytics.optimum_start import OptimumStartConfig
from agent.config.control import RecordError, parse_record

SECTIONS = ("faults",)


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
