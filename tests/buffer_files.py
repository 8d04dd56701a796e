"""A room that samples fast, and what its buffer files hold: for the fault and kill tests."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Optional

from agent.pipeline.staged_outbox import stage_path

# Nine simulated chips on one bus, each read every second: ~9 readings a second.
FAST_ROOM = "".join(
    f'[[devices]]\nname = "{name}"\ndriver = "{driver}"\naddress = {address}\ninterval = 1\n'
    for name, driver, address in [
        ("climate", "bme280", "0x76"), ("baro", "bmp280", "0x77"), ("rh", "sht4x", "0x44"),
        ("rh2", "sht3x", "0x45"), ("power", "ina219", "0x40"), ("power2", "ina226", "0x41"),
        ("light", "veml7700", "0x10"), ("light2", "bh1750", "0x23"), ("pm", "pmsa003i", "0x12"),
    ]
)  # fmt: skip


def committed(
    state: Path, with_reserved: bool = False, stage_dir: Optional[Path] = None
) -> tuple[set[int], int]:
    """The seqs in the buffer now (on the card and in its RAM stage), and one past the highest
    handed out that the files show; with_reserved: past the block reserved on the card too,
    below which a restarted agent never hands out a seq."""
    # An agent killed early in a slow start (under load) may not have made its buffer, or not
    # committed its tables yet: nothing of it is committed.
    if not (state / "buffer.sqlite").exists():
        return set(), 0
    # Closed at once (contextlib.closing): on 3.9 an unclosed connection lingers until the
    # garbage collector, and its close checkpoints the WAL under a running agent's feet.
    with contextlib.closing(sqlite3.connect(state / "buffer.sqlite")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"outbox", "meta"} <= tables:
            return set(), 0
        rows = {r[0] for r in db.execute("SELECT seq FROM outbox")}
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    stage = stage_path(state / "buffer.sqlite", stage_dir)
    if stage.exists():
        with contextlib.closing(sqlite3.connect(stage)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows |= {r[0] for r in db.execute("SELECT seq FROM stage")}
    floor = max(meta.get("seq_next", 1), meta.get("seq_reserved", 0) if with_reserved else 0)
    return rows, max([floor, *(s + 1 for s in rows)])
