"""After each session, a report of how the room served it, published on `<base>/sessions`.

The recorder follows the room through a session (CO2 peak and mean, minutes outside category
II, the peak headcount estimate, energy from the meter or the relays' counters) and keeps its
progress in the node's state store every PERSIST_EVERY seconds, so a restart carries on with the
same session. A session that ended while the agent was down is reported at the next start with
what was seen ("complete": false). The runtime hands each report to the durable buffer and only
then marks it reported: after a crash in between a report may come twice (same `start`), never
not at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from agent.common.state_store import KeyValueStore
from agent.config.sessions import Session, _iso
from agent.room.comfort import CATEGORIES

KEY = "session_report"
PERSIST_EVERY = 60.0  # s of session time between saves (one state-file write a minute at most)


@dataclass
class _Progress:
    start: float
    end: float
    title: str
    energy_at_start: Optional[float] = None  # kWh counter when the session began
    energy_last: Optional[float] = None
    co2_sum: float = 0.0
    co2_n: int = 0
    co2_peak: Optional[float] = None
    outside_ii_s: float = 0.0
    seen_s: float = 0.0
    peak_people: int = 0
    saved_at: float = 0.0


class SessionRecorder:
    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        saved = store.get(KEY) or {}
        self._progress = _Progress(**saved["progress"]) if saved.get("progress") else None
        self.reported_until: float = float(saved.get("reported_until", 0.0))

    def update(
        self,
        t: float,
        session: Optional[Session],
        dt: float,
        co2: Optional[float],
        category: Optional[str],
        people: Optional[int],
        energy_kwh: Optional[float],
    ) -> list[tuple[float, dict[str, Any]]]:
        """One look at the room (dt seconds since the last); returns the reports now due, each
        with its session's end (epoch s) for reported()."""
        reports = []
        p = self._progress
        if p is not None and (session is None or session.start != p.start) and t >= p.end:
            reports.append((p.end, self._report(p)))
            self._progress = p = None
        if session is not None and session.start >= self.reported_until and p is None:
            p = self._progress = _Progress(session.start, session.end, session.title)
        if p is not None and session is not None and session.start == p.start:
            p.seen_s += dt
            if energy_kwh is not None:
                if p.energy_at_start is None:
                    p.energy_at_start = energy_kwh
                p.energy_last = energy_kwh
            if co2 is not None:
                p.co2_sum += co2
                p.co2_n += 1
                p.co2_peak = co2 if p.co2_peak is None else max(p.co2_peak, co2)
            if category is not None and CATEGORIES.index(category) > 1:
                p.outside_ii_s += dt
            if people is not None:
                p.peak_people = max(p.peak_people, people)
            if t - p.saved_at >= PERSIST_EVERY:
                p.saved_at = t
                self._save()
        return reports

    def _report(self, p: _Progress) -> dict[str, Any]:
        length = p.end - p.start
        energy = None
        if p.energy_at_start is not None and p.energy_last is not None:
            energy = round(p.energy_last - p.energy_at_start, 3)
        return {
            "start": _iso(p.start),
            "end": _iso(p.end),
            "title": p.title,
            "energy_kwh": energy,
            "co2_peak": None if p.co2_peak is None else round(p.co2_peak),
            "co2_mean": round(p.co2_sum / p.co2_n) if p.co2_n else None,
            "minutes_outside_category_ii": round(p.outside_ii_s / 60.0, 1),
            "peak_occupancy_estimate": p.peak_people,
            # Seen less than the session lasted (the agent was down part of it): partial.
            "complete": p.seen_s >= length - 120.0,
        }

    def missed(self, ended: list[Session]) -> list[tuple[float, dict[str, Any]]]:
        """Reports for sessions that began and ended while the agent was not running."""
        p = self._progress
        return [
            (s.end, self._report(_Progress(s.start, s.end, s.title)))
            for s in ended
            if s.end > self.reported_until and (p is None or s.start != p.start)
        ]

    def reported(self, end: float) -> None:
        """The runtime calls this once the report is in the durable buffer."""
        self.reported_until = max(self.reported_until, end)
        self._save()

    def _save(self) -> None:
        p = self._progress
        self.store.set(KEY, {"progress": asdict(p) if p is not None else None,
                             "reported_until": self.reported_until})  # fmt: skip
        self.store.flush()
