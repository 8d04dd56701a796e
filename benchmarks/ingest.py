"""Buffer ingest: readings committed durably per second, and bytes written to disk per reading.

Each reading is one transaction, as the agent commits them (Outbox.append), at each durability
setting. Bytes written come from /proc/self/io (write_bytes: what this process sent towards the
block device, WAL frames and checkpoints included), because an SD card wears per byte written.
The baseline in the same run is bare sqlite3 doing the least a durable buffer must do: one
INSERT and COMMIT per row into a WAL database with the same page size and synchronous setting.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from agent.mqtt.contract import telemetry_payload
from agent.pipeline.outbox import Outbox
from benchmarks.harness import Benchmark, Params, Result, figure, filesystem, write_bytes

VALUES = {"temperature": 21.53, "humidity": 40.12, "pressure": 1013.25}
TOPIC = "roomagent/bench/telemetry/climate"


def _payload(seq: int) -> bytes:
    return telemetry_payload(time.time(), seq, True, VALUES)


def agent_ingest(path: Path, rows: int, durability: str) -> tuple[float, int]:
    """(seconds, bytes written) for rows readings appended one transaction each."""
    box = Outbox(path, max_rows=10**8, max_bytes=10**11, durability=durability)
    before, start = write_bytes(), time.perf_counter()
    for _ in range(rows):
        box.append(TOPIC, _payload)
    elapsed = time.perf_counter() - start
    written = write_bytes() - before
    box.close()
    return elapsed, written


def bare_sqlite(path: Path, rows: int, durability: str) -> tuple[float, int]:
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA page_size=1024")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={durability.upper()}")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, topic TEXT, payload BLOB)")
    before, start = write_bytes(), time.perf_counter()
    for seq in range(1, rows + 1):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?, ?)", (seq, TOPIC, _payload(seq)))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    written = write_bytes() - before
    db.close()
    return elapsed, written


def run(params: Params, workdir: Path) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    rows = params["rows"]
    out: Result = {"rows": rows, "filesystem": filesystem(workdir), "settings": {}}
    figures = []
    for durability in params["durability"]:
        t_agent, w_agent = agent_ingest(workdir / f"agent-{durability}.sqlite", rows, durability)
        t_bare, w_bare = bare_sqlite(workdir / f"bare-{durability}.sqlite", rows, durability)
        entry = {
            "readings_per_s": round(rows / t_agent),
            "disk_bytes_per_reading": round(w_agent / rows),
            "bare_sqlite_rows_per_s": round(rows / t_bare),
            "bare_sqlite_disk_bytes_per_row": round(w_bare / rows),
        }
        out["settings"][durability] = entry
        figures.append(
            figure(
                f'ingest, durability = "{durability}", one commit per reading',
                f"{entry['readings_per_s']:,} readings/s, "
                f"{entry['disk_bytes_per_reading']:,} B written per reading",
                f"bare sqlite3 {entry['bare_sqlite_rows_per_s']:,} rows/s, "
                f"{entry['bare_sqlite_disk_bytes_per_row']:,} B/row",
            )
        )
    out["figures"], out["targets"] = figures, []
    return out


BENCHMARK = Benchmark(
    name="ingest",
    summary="readings committed durably per second, bytes written per reading",
    sizes={
        "full": {"rows": 5000, "durability": ["full", "normal"]},
        "smoke": {"rows": 30, "durability": ["full", "normal"]},
    },
    run=run,
)
