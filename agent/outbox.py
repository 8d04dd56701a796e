"""The durable store-and-forward buffer: a SQLite outbox in WAL mode.

A reading is committed here before it is ever published, and deleted only once the broker has
acknowledged it (QoS 1 PUBACK). Its sequence number is allocated in the same transaction, so it
never repeats across restarts. The outbox is bounded in rows and bytes; when full, the oldest
rows are dropped and counted in the `dropped` statistic, which the agent publishes.

All methods are blocking; the runtime calls them from one writer thread. See docs/buffer.md for
what a power cut can lose under each durability setting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq     INTEGER PRIMARY KEY,
    topic   TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

# Under durability "normal" the last commits may roll back on power loss, taking seq_next with
# them; a seq already published must still never be reused, so blocks of this many are reserved
# by an fsync'd commit ahead of use. A crash then skips at most one block of numbers.
SEQ_RESERVE_BLOCK = 1000


class Row(NamedTuple):
    seq: int
    topic: str
    payload: bytes


@dataclass(frozen=True)
class OutboxStats:
    rows: int
    bytes: int
    dropped: int
    next_seq: int


class Outbox:
    def __init__(
        self, path: Path, *, max_rows: int, max_bytes: int, durability: str = "full"
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', got {durability!r}")
        self.path = Path(path)
        self.max_rows, self.max_bytes, self.durability = max_rows, max_bytes, durability
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        # Small pages: each commit rewrites whole pages, and an SD card wears per byte written.
        # Takes effect only when the file is created.
        self.db.execute("PRAGMA page_size=1024")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={durability.upper()}")
        self.db.executescript(SCHEMA)
        self.rows, self.bytes = self.db.execute(
            "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) FROM outbox"
        ).fetchone()
        self.dropped = self._meta("dropped")
        max_seq = self.db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0]
        self.next_seq = max(self._meta("seq_next"), self._meta("seq_reserved"), max_seq + 1, 1)
        self._reserved = self.next_seq
        if durability == "normal":
            self._reserve()

    def _meta(self, key: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _reserve(self) -> None:
        self._reserved = self.next_seq + SEQ_RESERVE_BLOCK
        self.db.execute("PRAGMA synchronous=FULL")
        try:
            with self._transaction():
                self._set_meta("seq_reserved", self._reserved)
        finally:
            self.db.execute("PRAGMA synchronous=NORMAL")

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def append(self, topic: str, make_payload: Callable[[int], bytes]) -> int:
        """Commits one message; make_payload receives the seq so the payload can carry it."""
        return self.append_many([(topic, make_payload)])[0]

    def append_many(self, items: Iterable[tuple[str, Callable[[int], bytes]]]) -> list[int]:
        """Commits several messages in one transaction (one fsync)."""
        items = list(items)
        if self.durability == "normal" and self.next_seq + len(items) > self._reserved:
            self._reserve()
        seqs: list[int] = []
        added = 0
        with self._transaction():
            for topic, make_payload in items:
                seq = self.next_seq + len(seqs)
                payload = make_payload(seq)
                self.db.execute(
                    "INSERT INTO outbox(seq, topic, payload) VALUES (?, ?, ?)",
                    (seq, topic, payload),
                )
                seqs.append(seq)
                added += len(topic.encode()) + len(payload)
            # seq_next is not written here: while rows exist, max(seq) says where to resume. It is
            # written by whatever deletes rows (trim, delete), saving a page write per reading.
            dropped, freed = self._trim(self.rows + len(seqs), self.bytes + added, seqs[-1] + 1)
        # Only now that the commit succeeded does the in-memory view move on.
        self.next_seq += len(seqs)
        self.rows += len(seqs) - dropped
        self.bytes += added - freed
        self.dropped += dropped
        return seqs

    def _trim(self, rows: int, size: int, seq_next: int) -> tuple[int, int]:
        """Inside a transaction: drops the oldest rows until under both bounds."""
        dropped = freed = 0
        while rows - dropped > self.max_rows or size - freed > self.max_bytes:
            over_rows = max(0, rows - dropped - self.max_rows)
            batch = max(over_rows, 1)  # over the byte bound only: one row at a time
            victims = self.db.execute(
                "SELECT seq, length(topic) + length(payload) FROM outbox ORDER BY seq LIMIT ?",
                (min(batch, 10000),),
            ).fetchall()
            if not victims:
                break
            self.db.execute("DELETE FROM outbox WHERE seq <= ?", (victims[-1][0],))
            dropped += len(victims)
            freed += sum(v[1] for v in victims)
        if dropped:
            self._set_meta("dropped", self.dropped + dropped)
            self._set_meta("seq_next", seq_next)
        return dropped, freed

    def fetch(self, after_seq: int, limit: int) -> list[Row]:
        """The oldest rows with seq > after_seq."""
        return [
            Row(seq, topic, bytes(payload))
            for seq, topic, payload in self.db.execute(
                "SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
        ]

    def delete(self, seqs: Iterable[int]) -> int:
        """Removes acknowledged rows in one transaction; seqs already gone are ignored.

        Deletes are not fsync'd: if a power cut undoes one, the row is simply sent again
        (at-least-once, and subscribers de-duplicate by seq). This keeps a backlog drain from
        costing one flash write per acknowledgement.
        """
        seqs = list(seqs)
        count = size = 0
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            count, size = self._delete(seqs)
        finally:
            self.db.execute(f"PRAGMA synchronous={self.durability.upper()}")
        self.rows -= count
        self.bytes -= size
        return count

    def _delete(self, seqs: list[int]) -> tuple[int, int]:
        count = size = 0
        with self._transaction():
            self._set_meta("seq_next", self.next_seq)
            for i in range(0, len(seqs), 500):  # stay under SQLite's bound-parameter limit
                chunk = seqs[i : i + 500]
                marks = ",".join("?" * len(chunk))
                c, s = self.db.execute(
                    "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) "
                    f"FROM outbox WHERE seq IN ({marks})",
                    chunk,
                ).fetchone()
                self.db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk)
                count, size = count + c, size + s
        return count, size

    def stats(self) -> OutboxStats:
        return OutboxStats(self.rows, self.bytes, self.dropped, self.next_seq)

    def close(self) -> None:
        """A clean close: the next start continues the sequence with no gap."""
        self.db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            self._set_meta("seq_next", self.next_seq)
            if self.durability == "normal":
                self._set_meta("seq_reserved", self.next_seq)
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
