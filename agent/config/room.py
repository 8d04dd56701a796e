"""The `[room]` and `[[sessions]]` parts of a node's config: what the room is (for comfort,
occupancy and session reports) and its calendar. Reference in docs/config.md ("[room]").

    [room]
    volume_m3 = 400
    seats = 60
    co2_sensor = "air"              # a device measuring co2
    temperature_sensor = "climate"  # its temperature is graded as the operative temperature
    ventilation = "air"             # the [[ventilation]] whose stage sets the airflow
    stage_airflow_m3h = [900, 1800]
    calendar = "council.ics"        # an .ics file or an https:// URL, polled

    [[sessions]]
    start = "2026-03-02T18:00:00"   # local to control.timezone unless an offset is given
    end = "2026-03-02T21:00:00"
    title = "Council session"
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Callable, Optional

from agent.config.analytics import OptimumStartConfig, parse_optimum_start
from agent.config.control import RecordError, parse_record
from agent.config.sessions import CalendarError, Session, parse_records

SECTIONS = ("room", "sessions")
SEASONS = ("auto", "heating", "cooling")


@dataclasses.dataclass(frozen=True)
class RoomConfig:
    volume_m3: float
    seats: int = 0
    co2_sensor: Optional[str] = None
    temperature_sensor: Optional[str] = None
    outdoor_temperature_sensor: Optional[str] = None  # for the season; else by the month
    outdoor_co2: float = 420.0  # ppm, the reference the CO2 categories are judged above
    outdoor_co2_sensor: Optional[str] = None  # a measured reference instead
    season: str = "auto"
    infiltration_ach: float = 0.2
    stage_airflow_m3h: tuple[float, ...] = ()
    ventilation: Optional[str] = None
    preheat_minutes: float = 60.0  # comfort this long before a session
    calendar: Optional[str] = None  # .ics path or URL
    calendar_poll_minutes: float = 15.0
    comfort_interval: float = 60.0  # s between retained comfort/occupancy updates
    # [room.optimum_start]; None: the fixed preheat_minutes.
    optimum_start: Optional[OptimumStartConfig] = None

    def __post_init__(self) -> None:
        for field in ("volume_m3", "calendar_poll_minutes", "comfort_interval"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{field}: must be a number > 0, got {value!r}")
        for field in ("infiltration_ach", "preheat_minutes", "outdoor_co2"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{field}: must be a number ≥ 0, got {value!r}")
        if self.seats < 0:
            raise ValueError(f"seats: must be ≥ 0, got {self.seats}")
        if self.season not in SEASONS:
            raise ValueError(f"season: must be one of {', '.join(SEASONS)}, got {self.season!r}")
        flows = tuple(self.stage_airflow_m3h)
        if not all(isinstance(f, (int, float)) and f > 0 for f in flows):
            raise ValueError(f"stage_airflow_m3h: must be numbers > 0, got {list(flows)}")
        object.__setattr__(self, "stage_airflow_m3h", tuple(float(f) for f in flows))

    def airflow_m3_s(self, stage: int) -> float:
        flow = self.infiltration_ach * self.volume_m3 / 3600.0
        if stage > 0 and self.stage_airflow_m3h:
            flow += self.stage_airflow_m3h[min(stage, len(self.stage_airflow_m3h)) - 1] / 3600.0
        return flow


def parse_room(
    data: dict[str, Any],
    error: Callable[[str, str], Exception],
    devices: Sequence[Any],
    ventilation: Sequence[str],
    timezone: str,
) -> tuple[Optional[RoomConfig], tuple[Session, ...]]:
    """[room] and [[sessions]] of an already-loaded TOML; error(key, message) makes the
    loader's ConfigError. Sensor names must be devices of this config."""
    room: Optional[RoomConfig] = None
    if "room" in data:
        try:
            parsed, extra = parse_record(data["room"], RoomConfig, skip=("optimum_start",))
        except RecordError as e:
            raise error("room" + (f".{e.key}" if e.key else ""), e.message) from None
        learning = parse_optimum_start(extra.get("optimum_start"), parsed.preheat_minutes, error)
        room = dataclasses.replace(parsed, optimum_start=learning)
        names = {d.name for d in devices}
        for key in ("co2_sensor", "temperature_sensor", "outdoor_temperature_sensor",
                    "outdoor_co2_sensor"):  # fmt: skip
            value = getattr(room, key)
            if value is not None and value not in names:
                raise error(f"room.{key}", f"no device named {value!r} (devices: "
                            f"{', '.join(sorted(names)) or 'none'})")  # fmt: skip
        if room.ventilation is not None and room.ventilation not in ventilation:
            raise error("room.ventilation", f"no [[ventilation]] named {room.ventilation!r}")
    sessions: tuple[Session, ...] = ()
    if "sessions" in data:
        try:
            sessions = tuple(parse_records(data["sessions"], timezone))
        except CalendarError as e:
            key, _, message = str(e).partition(": ")
            raise error(key, message) from None
    return room, sessions
