"""Fifteen-minute comfort records kept on the node for a year, in their own small SQLite file.

One row per quarter hour: mean operative temperature and CO2 over the readings seen, occupied
seconds, and the category of each mean. A year is 35,136 rows: 1,040,384 bytes measured, under
DISK_BUDGET (tests/test_comfort.py fills a year and checks). One commit per
quarter hour, 96 a day, so the log adds little to the SD card's write budget; rows older than
KEEP_DAYS go at the first write of each day.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from agent.room.comfort import Grade, grade

SLOT = 15 * 60  # s
KEEP_DAYS = 400  # a year and a margin for reports on "the same month last year"
DISK_BUDGET = 4 * 1024 * 1024  # bytes, for KEEP_DAYS of records

_SCHEMA = """
CREATE TABLE IF NOT EXISTS comfort (
    slot INTEGER PRIMARY KEY,   -- start of the quarter hour, UTC epoch seconds
    t_op REAL,                  -- mean operative temperature, °C (NULL: no reading)
    co2 REAL,                   -- mean CO2, ppm
    occupied INTEGER NOT NULL,  -- occupied seconds in the slot
    t_cat TEXT,
    co2_cat TEXT
) WITHOUT ROWID
"""


@dataclass(frozen=True)
class Record:
    slot: int
    t_op: Optional[float]
    co2: Optional[float]
    occupied: int
    t_cat: Optional[str]
    co2_cat: Optional[str]


class ComfortLog:
    def __init__(self, path: Union[str, Path]) -> None:
        self.db = sqlite3.connect(str(path))
        # WAL without a sync per commit: a power cut may lose the last quarter hours, never
        # corrupt the file, and the card sees a sync only at checkpoints.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(_SCHEMA)
        self.db.commit()
        self._slot: Optional[int] = None
        self._sums = [0.0, 0, 0.0, 0, 0.0]  # t sum, t n, co2 sum, co2 n, occupied s
        self._last: Optional[Grade] = None
        self._pruned_day: Optional[int] = None

    def add(self, t: float, g: Grade, occupied: bool, dt: float) -> Optional[Record]:
        """One grading at time t; returns the record written when t starts a new slot."""
        slot = int(t // SLOT * SLOT)
        written = None
        if self._slot is not None and slot != self._slot:
            written = self.flush()
        self._slot, self._last = slot, g
        s = self._sums
        if g.operative_temperature is not None:
            s[0] += g.operative_temperature
            s[1] += 1
        if g.co2 is not None:
            s[2] += g.co2
            s[3] += 1
        if occupied:
            s[4] += dt
        return written

    def flush(self) -> Optional[Record]:
        if self._slot is None or self._last is None:
            return None
        s, last = self._sums, self._last
        t_op = s[0] / s[1] if s[1] else None
        co2 = s[2] / s[3] if s[3] else None
        mean = grade(t_op, co2, last.outdoor_co2, last.season)
        record = Record(self._slot, t_op, co2, round(s[4]), mean.temperature_category,
                        mean.co2_category)  # fmt: skip
        self.db.execute(
            "INSERT OR REPLACE INTO comfort VALUES (?, ?, ?, ?, ?, ?)",
            (record.slot, record.t_op, record.co2, record.occupied, record.t_cat,
             record.co2_cat),
        )  # fmt: skip
        day = self._slot // 86400
        if day != self._pruned_day:
            self.db.execute("DELETE FROM comfort WHERE slot < ?", (self._slot - KEEP_DAYS * 86400,))
            self._pruned_day = day
        self.db.commit()
        self._sums = [0.0, 0, 0.0, 0, 0.0]
        self._slot = None
        return record

    def records(self, since: float = 0.0) -> list[Record]:
        rows = self.db.execute("SELECT * FROM comfort WHERE slot >= ? ORDER BY slot", (since,))
        return [Record(*row) for row in rows]

    def close(self) -> None:
        self.flush()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()
