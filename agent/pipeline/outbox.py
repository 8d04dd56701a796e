"""The durable store-and-forward buffer: a SQLite outbox in WAL mode.

A reading is committed here before it is ever published, and deleted only once the broker has
acknowledged it (QoS 1 PUBACK). Its sequence number is allocated in the same transaction, so it
never repeats across restarts. The outbox is bounded in rows and bytes; when full, the oldest
rows are dropped and counted in the `dropped` statistic, which the agent publishes.

All methods are blocking; the runtime calls them from one writer thread. See docs/buffer.md for
what a power cut can lose under each durability setting.

Over 500 lines on purpose: one class whose every write keeps the same accounts (rows, bytes,
the sequence floor, the dropped list, the free-space reserve) inside one transaction; moving
its methods apart would separate each statement from the bookkeeping that must commit with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Optional

from agent.common.seq_floor import SeqFloor

log = logging.getLogger("roomagent.outbox")

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq     INTEGER PRIMARY KEY,
    topic   TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS unsynced (
    -- readings stamped before NTP set the clock: when they were taken on the monotonic clock
    -- of which boot, so their time can be corrected once the clock is right. Rows of readings
    -- already delivered are left until the correction or the next start clears them.
    seq       INTEGER PRIMARY KEY,
    boot      TEXT NOT NULL,
    monotonic REAL NOT NULL
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
# When the disk is full, this many of the oldest rows are dropped to make room, and the reading
# is committed after all. Deleting needs a little space itself (SQLite writes the change to its
# WAL first), so a small reserve file is kept beside the database and given up at that moment.
FULL_DROP_ROWS = 200
RESERVE_BYTES = 256 * 1024
# Better than hitting a full disk: while the filesystem has less than this free, the buffer
# stops growing (each new reading replaces the oldest, as at max_bytes). Checked every
# SPACE_CHECK_EVERY appends. 4 MiB leaves room for SQLite's WAL (about 1 MiB between
# checkpoints) and for whatever else shares the card.
MIN_FREE_BYTES = 4 * 1024 * 1024
SPACE_CHECK_EVERY = 50
# ...but never below this (or half the space left, if less): a connected node must still hold
# what it is handing to the broker (two windows in flight and the read-ahead, ~2,000 readings of
# ~250 bytes). Capping an empty buffer at its size (0) once removed every new row in the
# transaction that added it.
LOW_SPACE_FLOOR_BYTES = 512 * 1024
# Readings are what the bounds drop first; events, energy and other room-control messages
# only once no reading is left to drop (docs/buffer.md, Bounds).
READING_TOPIC = "*/telemetry/*"
# Seqs dropped recently, remembered so that one the forwarder had already read ahead, and so
# delivers after all, is taken off the `dropped` count when its acknowledgement arrives.
DROPPED_MEMORY = 20000
LOW_SPACE_CHECKPOINT_PAGES = 32


class OutboxError(Exception):
    """The buffer cannot be opened or written: the message says what to check."""


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
    recovered_from: Optional[str] = None  # where a corrupt database was moved aside


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        max_rows: int,
        max_bytes: int,
        durability: str = "full",
        min_free_bytes: int = MIN_FREE_BYTES,
        reserve_bytes: int = RESERVE_BYTES,
        low_space_floor_bytes: int = LOW_SPACE_FLOOR_BYTES,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', got {durability!r}")
        self.path = Path(path)
        self.max_rows, self.max_bytes, self.durability = max_rows, max_bytes, durability
        self.configured_max_bytes, self.min_free_bytes = max_bytes, min_free_bytes
        self.reserve_bytes = reserve_bytes
        self.low_space_floor_bytes = low_space_floor_bytes
        self._recently_dropped: dict[int, None] = {}  # insertion-ordered, bounded
        self._appends_since_check = SPACE_CHECK_EVERY  # check at the first append
        self.reserve_path = self.path.with_name(self.path.name + ".reserve")
        self.recovered_from: Optional[str] = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            try:
                self._open()
            except sqlite3.DatabaseError as e:
                if isinstance(e, sqlite3.OperationalError) and "unable to open" in str(e):
                    raise
                self.recovered_from = self._move_aside(e)
                fresh = True
                self._open()
            floor = SeqFloor(self.path.with_name(self.path.name + ".seq"))
            # The first writes too: a read-only disk after an unclean stop fails here, not at
            # open (SQLite opens a read-only file and fails at the first write).
            self._resume(fresh, floor)
        except (OSError, sqlite3.OperationalError) as e:
            if getattr(self, "db", None) is not None:
                self.db.close()
            raise OutboxError(
                f"cannot open the buffer {self.path}: {e}; check that {self.path.parent} "
                "exists, is writable by the agent's user, and the disk is not full or read-only"
            ) from e

    def _resume(self, fresh: bool, floor: SeqFloor) -> None:
        self.rows, self.bytes = self.db.execute(
            "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) FROM outbox"
        ).fetchone()
        self.dropped = self._meta("dropped")
        with self._transaction():
            self.db.execute("DELETE FROM unsynced WHERE seq NOT IN (SELECT seq FROM outbox)")
        max_seq = self.db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0]
        self.next_seq = max(self._meta("seq_next"), self._meta("seq_reserved"), max_seq + 1, 1)
        if fresh:  # a new database: continue above anything an earlier one may have used
            self.next_seq = max(self.next_seq, floor.value)
        self.floor = floor
        self.floor.cover(self.next_seq)
        self._reserved = self.next_seq
        if self.durability == "normal":
            self._reserve()
        self._keep_reserve()

    def set_limits(self, max_rows: int, max_bytes: int, durability: str) -> None:
        """A new config's limits, applied in place; rows over them go at the next append."""
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', got {durability!r}")
        # A cap for low disk space (below the configured size) stays until the space returns.
        capped = self.max_bytes < self.configured_max_bytes
        self.max_rows, self.configured_max_bytes = max_rows, max_bytes
        self.max_bytes = min(max_bytes, self.max_bytes) if capped else max_bytes
        if durability != self.durability:
            self.durability = durability
            self.db.execute(f"PRAGMA synchronous={durability.upper()}")

    def _open(self) -> None:
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            # Small pages: each commit rewrites whole pages, and an SD card wears per byte
            # written. Takes effect only when the file is created.
            self.db.execute("PRAGMA page_size=1024")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={self.durability.upper()}")
            self.db.executescript(SCHEMA)
            result = self.db.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {result}")
        except sqlite3.DatabaseError:
            self.db.close()
            raise

    def _move_aside(self, error: Exception) -> str:
        """A corrupt database is kept for inspection, never deleted: renamed with a timestamp."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                os.replace(source, str(target) + suffix)
        log.error(
            "buffer %s is corrupt (%s): moved aside to %s; starting a new buffer. Readings in "
            "it that were not yet delivered can be recovered from that file (docs/reliability.md)",
            self.path, error, target,
        )  # fmt: skip
        return str(target)

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

    def reserve_through(self, seq: int) -> None:
        """Records, fsync'd, that seqs up to `seq` may be in use elsewhere (the RAM stage): a
        start after a power cut continues above it. The floor file is raised with it."""
        self.floor.cover(seq + 1)
        self.db.execute("PRAGMA synchronous=FULL")
        try:
            with self._transaction():
                self._set_meta("seq_reserved", seq + 1)
        finally:
            self.db.execute(f"PRAGMA synchronous={self.durability.upper()}")

    def mark_unsynced(self, entries: Iterable[tuple[int, str, float]]) -> None:
        """(seq, boot id, monotonic time) of rows here stamped by an unsynchronised clock."""
        entries = list(entries)
        if entries:
            with self._transaction():
                self.db.executemany(
                    "INSERT OR REPLACE INTO unsynced(seq, boot, monotonic) VALUES (?, ?, ?)",
                    entries,
                )

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def append(
        self,
        topic: str,
        make_payload: Callable[[int], bytes],
        unsynced_at: Optional[tuple[str, float]] = None,
    ) -> int:
        """Commits one message; make_payload receives the seq so the payload can carry it.
        unsynced_at: (boot id, monotonic time) of a reading stamped by an unsynchronised clock,
        kept so correct_clock() can re-stamp it."""
        seq = self.append_many([(topic, make_payload)])[0]
        if unsynced_at is not None:
            with self._transaction():
                self.db.execute(
                    "INSERT INTO unsynced(seq, boot, monotonic) VALUES (?, ?, ?)",
                    (seq, *unsynced_at),
                )
        return seq

    def correct_clock(
        self, boot: str, wall_minus_monotonic: float, restamp: Callable[[bytes, float], bytes]
    ) -> int:
        """Re-stamps waiting readings of this boot that were taken before the clock was set:
        true time = monotonic time of the reading + (wall - monotonic) now. Readings of earlier
        boots cannot be placed (their monotonic clock is gone) and keep clock_synced false."""
        with self._transaction():
            count, grown = restamp_unsynced(self.db, "outbox", boot, wall_minus_monotonic, restamp)
            self.bytes += grown
        return count

    def append_many(
        self,
        items: Iterable[tuple[str, Callable[[int], bytes]]],
        seqs: Optional[list[int]] = None,
    ) -> list[int]:
        """Commits several messages in one transaction (one fsync). When the disk is full, the
        oldest rows are dropped (and counted) to make room; OutboxError if even that fails.
        seqs: numbers already given to these messages (rows moved here from the RAM stage,
        agent.pipeline.staged_outbox), ascending and above any row here; None allocates the next
        ones."""
        items = list(items)
        try:
            return self._append_many(items, seqs)
        except sqlite3.OperationalError as e:
            if not _is_full(e):
                raise
        self._free_emergency_space()
        dropped = self._drop_oldest(FULL_DROP_ROWS)
        self._checkpoint()
        log.error("disk full under the buffer: dropped the %d oldest readings", dropped)
        try:
            return self._append_many(items, seqs)
        except sqlite3.OperationalError as e:
            if not _is_full(e):
                raise
            self.dropped += len(items)  # counted in memory; the disk has no room to record it
            raise OutboxError(f"disk full: {len(items)} reading(s) could not be stored") from e

    def _free_emergency_space(self) -> None:
        """The disk is full: give back the WAL's space and the reserve, so SQLite can delete."""
        self._checkpoint()
        with contextlib.suppress(FileNotFoundError):
            self.reserve_path.unlink()

    def _checkpoint(self) -> None:
        """Copies the WAL into the database and truncates it, giving its space back."""
        with contextlib.suppress(sqlite3.OperationalError):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _keep_reserve(self) -> None:
        if self.reserve_path.exists():
            return
        try:
            with open(self.reserve_path, "wb") as f:
                f.truncate(0)
                f.write(b"\0" * self.reserve_bytes)  # written, not sparse: real blocks
        except OSError:  # no room yet: tried again after the next delivery
            with contextlib.suppress(OSError):
                self.reserve_path.unlink()

    def _drop_oldest(self, count: int) -> int:
        try:
            with self._transaction():
                seqs = [v[0] for v in self._victims(count)]
                dropped, freed = self._delete_counted(seqs)
                self._set_meta("dropped", self.dropped + dropped)
                self._set_meta("seq_next", self.next_seq)
        except sqlite3.OperationalError as e:
            if not _is_full(e):
                raise
            return 0
        self.rows -= dropped
        self.bytes -= freed
        self.dropped += dropped
        self._remember_dropped(seqs)
        return dropped

    def _victims(self, count: int) -> list[tuple[int, int]]:
        """The rows to drop first, (seq, size) oldest first: readings, and only when none is
        left, the rest (events, energy)."""
        query = "SELECT seq, length(topic) + length(payload) FROM outbox {} ORDER BY seq LIMIT ?"
        victims = self.db.execute(
            query.format("WHERE topic GLOB ?"), (READING_TOPIC, count)
        ).fetchall()
        if not victims:
            victims = self.db.execute(query.format(""), (count,)).fetchall()
        return victims

    def _remember_dropped(self, seqs: Iterable[int]) -> None:
        for seq in seqs:
            self._recently_dropped[seq] = None
        while len(self._recently_dropped) > DROPPED_MEMORY:
            del self._recently_dropped[next(iter(self._recently_dropped))]

    def _check_space(self) -> None:
        """Caps the buffer at its present size while the disk is nearly full; lifts the cap
        once there is room again."""
        self._appends_since_check = 0
        free = self._free_bytes()
        if free is None:
            return
        if not self.reserve_path.exists() and free > self.reserve_bytes + 2 * self.min_free_bytes:
            self._keep_reserve()
            free -= self.reserve_bytes
        if free < self.min_free_bytes:
            self._checkpoint()  # the WAL gives its space back first
            free = self._free_bytes() or 0
        # Never below what a connected node needs in flight, nor more than half what is left.
        floor = min(self.low_space_floor_bytes, free // 2)
        cap = min(max(self.bytes, floor), self.configured_max_bytes)
        if free < self.min_free_bytes and self.max_bytes > cap:
            self.max_bytes = cap
            # Keep the WAL short while space is short (SQLite's default lets it reach 1000 pages).
            self.db.execute(f"PRAGMA wal_autocheckpoint={LOW_SPACE_CHECKPOINT_PAGES}")
            log.error(
                "only %d KiB free under the buffer (%d rows in it): it stops growing at %d KiB; "
                "the oldest readings are dropped from now on", free // 1024, self.rows, cap // 1024
            )  # fmt: skip
        elif free > 2 * self.min_free_bytes and self.max_bytes < self.configured_max_bytes:
            self.max_bytes = self.configured_max_bytes
            self.db.execute("PRAGMA wal_autocheckpoint=1000")
            log.warning("disk space is back (%d KiB free): the buffer may grow again", free // 1024)

    def _free_bytes(self) -> Optional[int]:
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def _append_many(
        self, items: list[tuple[str, Callable[[int], bytes]]], given: Optional[list[int]] = None
    ) -> list[int]:
        self._appends_since_check += 1
        if self._appends_since_check >= SPACE_CHECK_EVERY:
            self._check_space()
        if not items:
            return []
        last = given[-1] if given else self.next_seq + len(items) - 1
        self.floor.cover(last + 1)
        if self.durability == "normal" and last + 1 > self._reserved:
            self._reserve()
        seqs: list[int] = []
        added = 0
        with self._transaction():
            for topic, make_payload in items:
                seq = given[len(seqs)] if given else self.next_seq + len(seqs)
                payload = make_payload(seq)
                self.db.execute(
                    "INSERT INTO outbox(seq, topic, payload) VALUES (?, ?, ?)",
                    (seq, topic, payload),
                )
                seqs.append(seq)
                added += len(topic.encode()) + len(payload)
            # seq_next is not written here: while rows exist, max(seq) says where to resume. It is
            # written by whatever deletes rows (trim, delete), saving a page write per reading.
            dropped, freed, gone = self._trim(
                self.rows + len(seqs), self.bytes + added, seqs[-1] + 1
            )
        self._remember_dropped(gone)
        # Only now that the commit succeeded does the in-memory view move on.
        self.next_seq = max(self.next_seq, seqs[-1] + 1)
        self.rows += len(seqs) - dropped
        self.bytes += added - freed
        self.dropped += dropped
        return seqs

    def _trim(self, rows: int, size: int, seq_next: int) -> tuple[int, int, list[int]]:
        """Inside a transaction: drops rows, readings oldest first, until under both bounds.
        Returns how many, their bytes, and their seqs."""
        gone: list[int] = []
        freed = 0
        while rows - len(gone) > self.max_rows or size - freed > self.max_bytes:
            over_rows = max(0, rows - len(gone) - self.max_rows)
            batch = max(over_rows, 1)  # over the byte bound only: one row at a time
            victims = self._victims(min(batch, 10000))
            if not victims:
                break
            seqs = [v[0] for v in victims]
            for i in range(0, len(seqs), 500):  # stay under SQLite's bound-parameter limit
                chunk = seqs[i : i + 500]
                self.db.execute(
                    f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(chunk))})", chunk
                )
            gone += seqs
            freed += sum(v[1] for v in victims)
        if gone:
            self._set_meta("dropped", self.dropped + len(gone))
            self._set_meta("seq_next", seq_next)
        return len(gone), freed, gone

    def fetch(self, after_seq: int, limit: int) -> list[Row]:
        """The oldest rows with seq > after_seq.

        Read as one result row of two aggregates, not one row per reading: the sqlite3 module
        lets go of the interpreter lock for every row it steps through, and during a backlog
        drain, with paho's thread busy, taking it back each time cost more than the reading
        itself (docs/benchmarks.md, backlog drain). Both aggregates walk the same rows in the
        same order, so the n-th entry of the index describes the n-th piece of the data."""
        index, data = self.db.execute(
            "SELECT group_concat(seq || ' ' || length(CAST(topic AS BLOB)) || ' ' "
            "|| length(CAST(payload AS BLOB)), ','), "
            "group_concat(hex(CAST(topic AS BLOB)) || hex(CAST(payload AS BLOB)), '') "
            "FROM (SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?)",
            (after_seq, limit),
        ).fetchone()
        if not index:
            return []
        raw, rows, at = bytes.fromhex(data), [], 0
        for entry in index.split(","):
            seq, topic_len, payload_len = map(int, entry.split())
            payload_at = at + topic_len
            rows.append(
                Row(seq, raw[at:payload_at].decode(), raw[payload_at : payload_at + payload_len])
            )
            at = payload_at + payload_len
        rows.sort()
        return rows

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
        except sqlite3.OperationalError as e:
            if not _is_full(e):
                raise
            # Even a delete needs room in the WAL: free some, then delete in small steps.
            # Rows that still cannot be deleted stay, and are sent again after a restart.
            self._free_emergency_space()
            for i in range(0, len(seqs), FULL_DROP_ROWS):
                try:
                    c, b = self._delete(seqs[i : i + FULL_DROP_ROWS])
                except sqlite3.OperationalError as again:
                    if not _is_full(again):
                        raise
                    log.error("disk full: %d delivered readings stay in the buffer", len(seqs) - i)
                    break
                count, size = count + c, size + b
                self._checkpoint()
        finally:
            self.db.execute(f"PRAGMA synchronous={self.durability.upper()}")
        self.rows -= count
        self.bytes -= size
        self._delivered_after_drop(seqs)
        if self.max_bytes < self.configured_max_bytes:
            self._check_space()  # readings delivered: the cap may come off at once
        return count

    def _delivered_after_drop(self, seqs: list[int]) -> None:
        """A row dropped from the buffer after the forwarder had read it ahead still reached
        the broker: acknowledged now, it is not lost, and comes off the `dropped` count."""
        late = [s for s in seqs if s in self._recently_dropped]
        for seq in late:
            del self._recently_dropped[seq]
        if not late:
            return
        self.dropped -= len(late)
        # A full disk: corrected in memory only.
        with contextlib.suppress(sqlite3.OperationalError), self._transaction():
            self._set_meta("dropped", self.dropped)

    def _delete(self, seqs: list[int]) -> tuple[int, int]:
        with self._transaction():
            self._set_meta("seq_next", self.next_seq)
            return self._delete_counted(seqs)

    def _delete_counted(self, seqs: list[int]) -> tuple[int, int]:
        """Inside a transaction: deletes these rows, returning how many and their bytes."""
        return delete_counted(self.db, "outbox", seqs)

    def tick(self) -> None:
        """Nothing to do on a timer: every commit is on the card already (see StagedOutbox)."""

    def stats(self) -> OutboxStats:
        return OutboxStats(self.rows, self.bytes, self.dropped, self.next_seq, self.recovered_from)

    def close(self) -> None:
        """A clean close: the next start continues the sequence with no gap."""
        self.db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            self._set_meta("seq_next", self.next_seq)
            # Nothing is reserved ahead any more (durability "normal", or the RAM stage).
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
        if not exc_type:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        if self.db.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
            self.db.execute("ROLLBACK")


def _is_full(e: sqlite3.OperationalError) -> bool:
    return "full" in str(e)  # SQLITE_FULL: "database or disk is full"


def delete_counted(
    db: sqlite3.Connection, table: str, seqs: list[int], also: tuple[str, ...] = ()
) -> tuple[int, int]:
    """Inside a transaction: deletes these seqs from `table` (and from the `also` tables, which
    hold no payload), returning how many rows `table` held and their bytes."""
    count = size = 0
    for i in range(0, len(seqs), 500):  # stay under SQLite's bound-parameter limit
        chunk = seqs[i : i + 500]
        marks = ",".join("?" * len(chunk))
        c, s = db.execute(
            "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) "
            f"FROM {table} WHERE seq IN ({marks})",
            chunk,
        ).fetchone()
        if c:
            for name in (table, *also):
                db.execute(f"DELETE FROM {name} WHERE seq IN ({marks})", chunk)
        count, size = count + c, size + s
    return count, size


def restamp_unsynced(
    db: sqlite3.Connection,
    table: str,
    boot: str,
    wall_minus_monotonic: float,
    restamp: Callable[[bytes, float], bytes],
) -> tuple[int, int]:
    """Inside the caller's transaction: re-stamps the rows of `table` ("outbox", or the RAM
    stage's "stage") listed in `unsynced` for `boot`, and empties `unsynced`. Returns how many
    rows, and by how many bytes their payloads grew."""
    rows = db.execute(
        f"SELECT o.seq, o.payload, u.monotonic FROM unsynced u JOIN {table} o USING (seq) "
        "WHERE u.boot = ?",
        (boot,),
    ).fetchall()
    grown = 0
    for seq, payload, monotonic in rows:
        fixed = restamp(bytes(payload), monotonic + wall_minus_monotonic)
        db.execute(f"UPDATE {table} SET payload = ? WHERE seq = ?", (fixed, seq))
        grown += len(fixed) - len(payload)
    db.execute("DELETE FROM unsynced")
    return len(rows), grown
