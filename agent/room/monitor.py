"""How well the room serves people, on the node: comfort category, headcount, session reports.

The runtime calls tick() from its control loop with what the room knows at that moment (sensor
readings, presence, the ventilation stage, the relays' energy counter); the monitor grades the
room (agent/room/comfort.py), estimates the headcount (agent/room/occupancy.py), keeps the 15-minute
records (agent/room/comfort_log.py), follows the calendar (agent/room/sessions.py) and says which
zone mode the calendar wants, and hands back what to publish: the retained comfort and occupancy
states, and the reports of sessions that ended (for the durable buffer).
No network here: the calendar URL is fetched by fetch_calendar(), which the runtime runs off
the event loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

from agent.common.state_store import KeyValueStore
from agent.config.room import RoomConfig
from agent.config.sessions import CalendarError, Session
from agent.mqtt.contract import iso_utc
from agent.room.comfort import ComfortTracker, Grade, grade, season_of
from agent.room.comfort_log import ComfortLog
from agent.room.occupancy import EDGE_WINDOW, Co2Occupancy, Estimate
from agent.room.session_report import SessionRecorder
from agent.room.sessions import SessionCalendar, parse_ics, parse_pushed

log = logging.getLogger(__name__)

# device, quantity -> (value, monotonic time taken) or None
Readings = Callable[[str, str], Optional[tuple[float, float]]]
STALE = 600.0  # s: an older reading is not graded
OUTDOOR_MEAN_TAU = 3 * 86400.0  # s: the outdoor running mean's time constant (EN 16798-1's
# exponentially weighted running mean with α = 0.8 per day weighs ~5 days; 3 days is close)


@dataclass
class Output:
    comfort: Optional[dict[str, Any]] = None  # retained on <base>/comfort when not None
    occupancy: Optional[dict[str, Any]] = None  # retained on <base>/occupancy
    reports: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # <base>/sessions
    zone_mode: Optional[str] = None  # "comfort" or "eco" at a calendar edge, else None


class RoomMonitor:
    def __init__(
        self,
        config: RoomConfig,
        sessions: tuple[Session, ...],
        state_dir: Path,
        store: KeyValueStore,
        timezone: str = "UTC",
    ) -> None:
        self.config, self.timezone = config, timezone
        self.calendar = SessionCalendar(sessions)
        self.tracker = ComfortTracker()
        self.log = ComfortLog(state_dir / "comfort.sqlite")
        self.occupancy = Co2Occupancy(config.volume_m3, config.seats, config.outdoor_co2)
        self.recorder = SessionRecorder(store)
        self._last: Optional[float] = None  # wall time of the last tick
        self._published: Optional[float] = None
        self._co2_at: Optional[float] = None  # monotonic time of the last CO2 fed to occupancy
        self._outdoor_mean: Optional[float] = None
        self._comfort_wanted: Optional[bool] = None
        self._started = True

    # --- the calendar --------------------------------------------------------------------------

    def push_sessions(self, items: Any) -> int:
        """Sessions pushed over MQTT replace the earlier push; CalendarError if any is bad."""
        import json

        sessions = parse_pushed(json.dumps(items).encode(), self.timezone)
        self.calendar.replace("mqtt", sessions)
        return len(sessions)

    def fetch_calendar(self, now: float) -> int:
        """Reads the configured .ics (file or URL) and replaces its sessions: blocking I/O, run
        it off the event loop. On failure the previous sessions stay and the error is raised."""
        source = self.config.calendar
        if source is None:
            return 0
        if source.startswith(("http://", "https://")):
            import requests

            try:
                response = requests.get(source, timeout=20)
                response.raise_for_status()
            except requests.RequestException as e:
                raise CalendarError(f"room.calendar: cannot fetch {source}: {e}") from None
            data = response.content
        else:
            try:
                data = Path(source).read_bytes()
            except OSError as e:
                raise CalendarError(f"room.calendar: cannot read {source}: {e}") from None
        sessions = parse_ics(data, now, self.timezone)
        self.calendar.replace("ics", sessions)
        return len(sessions)

    # --- the loop ------------------------------------------------------------------------------

    def tick(
        self,
        now: float,
        monotonic: float,
        readings: Readings,
        present: Optional[bool],
        stage: int,
        energy_kwh: Optional[float],
    ) -> Output:
        out = Output()
        dt_s = 0.0 if self._last is None else max(0.0, min(now - self._last, 60.0))
        self._last = now
        c = self.config

        def fresh(device: Optional[str], quantity: str) -> Optional[float]:
            r = readings(device, quantity) if device else None
            if r is None or monotonic - r[1] > STALE or not math.isfinite(r[0]):
                return None
            return r[0]

        co2 = fresh(c.co2_sensor, "co2")
        temperature = fresh(c.temperature_sensor, "temperature")
        outdoor_co2 = fresh(c.outdoor_co2_sensor, "co2") or c.outdoor_co2
        outdoor_t = fresh(c.outdoor_temperature_sensor, "temperature")
        if outdoor_t is not None:
            a = 1.0 if self._outdoor_mean is None else 1 - math.exp(-dt_s / OUTDOOR_MEAN_TAU)
            prev = outdoor_t if self._outdoor_mean is None else self._outdoor_mean
            self._outdoor_mean = prev + a * (outdoor_t - prev)
        local = dt.datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        season = c.season if c.season != "auto" else season_of(self._outdoor_mean, local.month)
        g = grade(temperature, co2, outdoor_co2, season)

        reading = readings(c.co2_sensor, "co2") if c.co2_sensor else None
        if reading is not None and reading[1] != self._co2_at and co2 is not None:
            self._co2_at = reading[1]
            self.occupancy.outdoor = outdoor_co2
            edge = self.calendar.near_edge(now, EDGE_WINDOW)
            self.occupancy.add(now, co2, c.airflow_m3_s(stage), present, edge)
        estimate = self.occupancy.estimate(present)
        occupied = (estimate.people > 0) if present is None else present
        self.tracker.add(local.date().isoformat(), g, occupied, dt_s)
        self.log.add(now, g, occupied, dt_s)

        session = self.calendar.current(now)
        # The report's peak headcount is the smoothed one, ten minutes late (Co2Occupancy.
        # lagged_people): a noisy live estimate's peak overshoots.
        out.reports = self.recorder.update(now, session, dt_s, co2, g.overall,
                                           self.occupancy.lagged_people(), energy_kwh)  # fmt: skip
        if self._started:
            self._started = False
            missed = self.calendar.ended_between(self.recorder.reported_until, now)
            out.reports = self.recorder.missed(missed) + out.reports

        wanted = self.calendar.wants_comfort(now, c.preheat_minutes * 60)
        if self.calendar.sessions and wanted != self._comfort_wanted:
            self._comfort_wanted = wanted
            out.zone_mode = "comfort" if wanted else "eco"

        if self._published is None or now - self._published >= c.comfort_interval:
            self._published = now
            out.comfort = self.comfort_state(now, g, local.date().isoformat())
            out.occupancy = self.occupancy_state(now, estimate)
        return out

    def comfort_state(self, now: float, g: Grade, day: str) -> dict[str, Any]:
        shares = self.tracker.shares(day)
        return {
            "ts": iso_utc(now),
            "category": g.overall,
            "season": g.season,
            "operative_temperature": {
                "value": _round(g.operative_temperature, 2),
                "category": g.temperature_category,
            },
            "co2": {
                "value": _round(g.co2, 0),
                "outdoor": round(g.outdoor_co2),
                "category": g.co2_category,
            },
            "today": {
                "occupied_minutes": round(self.tracker.days[day].occupied_s / 60, 1)
                if day in self.tracker.days
                else 0.0,
                **{q: {c: round(v, 4) for c, v in s.items()} for q, s in shares.items()},
            },
        }

    def occupancy_state(self, now: float, estimate: Estimate) -> dict[str, Any]:
        return {"ts": iso_utc(now), **estimate.as_json()}

    def close(self) -> None:
        self.log.close()


def _round(value: Optional[float], digits: int) -> Optional[float]:
    return None if value is None else round(value, digits)
