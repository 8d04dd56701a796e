"""The buffer with a RAM stage: flash writes for what the broker has not acknowledged, only.

A reading is committed first to a stage, a SQLite database on a RAM filesystem (systemd's
RuntimeDirectory, else /dev/shm), without fsync. A crash or kill -9 of the agent leaves it there
(the kernel holds the file), so nothing accepted is lost to a crash; nothing touches the SD card.
Readings still unacknowledged after ACK_GRACE are moved ("spilled") to the SD card's outbox
(agent.pipeline.outbox, fsync'd) in one transaction at most every `sync_interval` seconds: with the
broker up almost nothing is spilled, with it away one sequential batch per interval. A power
cut loses the stage: at most the readings accepted in the last sync_interval + ACK_GRACE + one
tick. Events and energy totals are staged like readings: an event written to the card at once
cost the card ~30 KB and a flush each, and the council chamber's control loop makes several a
minute; the relay state an event records is itself kept on the card (agent.control.relays decides
when). When the buffer must drop, readings go first and events last.

Rules that keep the two parts one ordered buffer:
- every seq on the card is below every seq in the stage (a spill moves the stage's oldest rows,
  or all of them), so fetch() is the card's rows then the stage's;
- seqs are reserved on the card SEQ_BLOCK at a time (fsync'd) before the stage uses them, so a
  power cut can skip numbers but never reuse one;
- a row found in both (a kill between a spill's commit and the stage's delete) is dropped from
  the stage when it is opened again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Callable, Optional, Union

from agent.config.schema import DEFAULT_SYNC_INTERVAL
from agent.pipeline import stage_sweep
from agent.pipeline.outbox import (
    MIN_FREE_BYTES,
    Outbox,
    OutboxError,
    OutboxStats,
    Row,
    delete_counted,
    restamp_unsynced,
)

log = logging.getLogger("roomagent.outbox")

STAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS stage (
    seq     INTEGER PRIMARY KEY,
    topic   TEXT NOT NULL,
    payload BLOB NOT NULL,
    at      REAL NOT NULL   -- monotonic time it was accepted: when it is due on the card
);
CREATE TABLE IF NOT EXISTS unsynced (
    seq       INTEGER PRIMARY KEY,
    boot      TEXT NOT NULL,
    monotonic REAL NOT NULL
);
-- 'buffer': the card's outbox this stage belongs to (agent.pipeline.stage_sweep reads it)
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
# A reading younger than this is most likely on the wire, its PUBACK milliseconds away: it is
# left in the stage, so a healthy broker costs the card nothing.
ACK_GRACE = 1.0
# How often the runtime calls tick(): a due spill waits at most this much more.
TICK = 1.0
# Seqs reserved on the card ahead of use: one fsync per this many readings.
SEQ_BLOCK = 10000
# The card's WAL is written full-length (zeros) once at each start, so spills overwrite blocks
# already allocated: a commit that grows the file costs ext4 a journal commit (~22 KB and 2
# flushes at the device), one that overwrites costs the blocks and 1 flush
# (/work/shared/notes/storage-measurement.md). SQLite reads frames only up to the first whose
# checksum fails, so a zero tail is an empty WAL to it. Covers SQLite's default autocheckpoint
# (1000 pages of 1 KiB, each frame with a 24-byte header) and some overshoot.
WAL_PREALLOCATE = 32 + 1100 * (1024 + 24)
# RAM the stage may hold if the card refuses spills (full, failing): the oldest readings beyond
# it are dropped and counted, as at the buffer's own bounds.
STAGE_MAX_BYTES = 16 * 1024 * 1024
# How long an agent waits for its stage's lock held by someone else (agent.pipeline.stage_sweep).
LOCK_WAIT = 2.0


def loss_window(sync_interval: float) -> float:
    """What a power cut can lose at most: readings accepted in this many seconds before it
    (and not yet acknowledged). A reading is due on the card ACK_GRACE after it was accepted,
    spilled at the first tick a sync_interval after the previous spill."""
    return sync_interval + ACK_GRACE + TICK


def default_stage_dir() -> Path:
    """systemd's RuntimeDirectory (a tmpfs under /run, kept across restarts of the service by
    RuntimeDirectoryPreserve=restart), else a directory of this user's in /dev/shm."""
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0])
    return Path("/dev/shm") / f"roomagent-{os.getuid()}"


# scripts/roomagent.service's RuntimeDirectory=roomagent: where the service keeps its stage.
SERVICE_STAGE_DIR = Path("/run/roomagent")


def stage_candidates(buffer_path: Path, stage_dir: Optional[Path] = None) -> list[Path]:
    """Where an agent using this buffer keeps its stage, for a reader from outside (the
    doctor, run by another user and without the service's environment): the configured
    directory, else the service's RuntimeDirectory and the buffer owner's /dev/shm directory."""
    if stage_dir is not None:
        return [stage_path(buffer_path, stage_dir)]
    try:
        uid = Path(buffer_path).stat().st_uid
    except OSError:
        uid = os.getuid()
    dirs = [SERVICE_STAGE_DIR, Path("/dev/shm") / f"roomagent-{uid}"]
    return [stage_path(buffer_path, d) for d in dirs]


def stage_path(buffer_path: Path, stage_dir: Optional[Path] = None) -> Path:
    """The stage of this buffer: named after the buffer's full path, so two agents (or tests)
    sharing a stage directory never share a stage."""
    key = hashlib.sha256(str(Path(buffer_path).resolve()).encode()).hexdigest()[:16]
    return (stage_dir or default_stage_dir()) / f"{Path(buffer_path).name}.{key}.stage"


class StagedOutbox:
    """The same interface as Outbox (append, fetch, delete, stats, ...), plus tick()."""

    def __init__(
        self,
        path: Path,
        *,
        max_rows: int,
        max_bytes: int,
        stage_dir: Optional[Path] = None,
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        **disk_options: int,
    ) -> None:
        self.disk = Outbox(
            path, max_rows=max_rows, max_bytes=max_bytes, durability="full", **disk_options
        )
        self.path = self.disk.path
        self.sync_interval, self._clock = sync_interval, clock
        self.stage_file = stage_path(self.path, stage_dir)
        try:
            self.stage_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock = self._take_lock()
            self.db = self._open_stage()
            with self.db:
                self.db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('buffer', ?)",
                    (str(self.path.resolve()),),
                )
        except (OSError, sqlite3.Error) as e:
            self.disk.close()
            raise OutboxError(
                f"cannot open the buffer's RAM stage {self.stage_file}: {e}; check that "
                f"{self.stage_file.parent} is writable, or set buffer.stage_dir "
                '(or buffer.durability = "full")'
            ) from e
        _preallocate(Path(f"{self.path}-wal"))
        # Rows a kill caught between a spill's commit and the stage's delete are on the card.
        on_disk = self.disk.db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0]
        with self.db:
            self.db.execute("DELETE FROM stage WHERE seq <= ?", (on_disk,))
            self.db.execute("DELETE FROM unsynced WHERE seq NOT IN (SELECT seq FROM stage)")
        self.rows, self.bytes, top = self.db.execute(
            "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0), "
            "coalesce(max(seq), 0) FROM stage"
        ).fetchone()
        # After a crash the card's reservation is above anything the stage used.
        self.next_seq = max(self.disk.next_seq, top + 1)
        self._reserved = 0  # seqs below this are reserved on the card
        self._last_spill = self._clock()
        self.spilled = 0  # readings moved to the card since the start (for the benchmark)
        # Ours is recovered above; the stages of agents that died for good go now.
        stage_sweep.sweep(self.stage_file.parent, keep=self.stage_file)

    def _take_lock(self) -> int:
        """One agent per buffer: a second one would hand out the same seqs from the stage."""
        # Another agent's start may hold it for the milliseconds it takes to see whether the
        # stage is stale (agent.pipeline.stage_sweep): that is waited out; a live agent is not.
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            fd = os.open(f"{self.stage_file}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    raise OSError(f"another agent is using this buffer ({self.path})") from None
                time.sleep(0.05)
                continue
            with contextlib.suppress(FileNotFoundError):
                if os.stat(f"{self.stage_file}.lock").st_ino == os.fstat(fd).st_ino:
                    return fd
            os.close(fd)  # a sweep removed the file we locked: lock the one there now

    def _open_stage(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.stage_file), isolation_level=None, check_same_thread=False)
        try:
            # The stage is in RAM: a kill leaves every write in the kernel's hands, and only a
            # power cut (which takes the RAM with it) could tear one, so nothing is synced.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.executescript(STAGE_SCHEMA)
            result = db.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {result}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        db.isolation_level = "IMMEDIATE"  # `with db:` is one transaction
        return db

    # -- the Outbox interface -------------------------------------------------------------

    def append(
        self,
        topic: str,
        make_payload: Callable[[int], bytes],
        unsynced_at: Optional[tuple[str, float]] = None,
    ) -> int:
        return self.append_many([(topic, make_payload)], unsynced_at)[0]

    def append_many(
        self,
        items: Iterable[tuple[str, Callable[[int], bytes]]],
        unsynced_at: Optional[tuple[str, float]] = None,
    ) -> list[int]:
        items = list(items)
        if not items:
            return []
        seqs = list(range(self.next_seq, self.next_seq + len(items)))
        self._reserve(seqs[-1])
        now = self._clock()
        added = 0
        with self.db:
            for (topic, make), seq in zip(items, seqs):
                payload = make(seq)
                self.db.execute(
                    "INSERT INTO stage(seq, topic, payload, at) VALUES (?, ?, ?, ?)",
                    (seq, topic, payload, now),
                )
                added += len(topic.encode()) + len(payload)
                if unsynced_at is not None:
                    self.db.execute(
                        "INSERT INTO unsynced(seq, boot, monotonic) VALUES (?, ?, ?)",
                        (seq, *unsynced_at),
                    )
        self.next_seq = seqs[-1] + 1
        self.rows += len(seqs)
        self.bytes += added
        if self.bytes > STAGE_MAX_BYTES:
            self._drop_staged()
        return seqs

    def fetch(self, after_seq: int, limit: int) -> list[Row]:
        rows = self.disk.fetch(after_seq, limit) if self.disk.rows else []
        if len(rows) < limit and self.rows:
            after = rows[-1].seq if rows else after_seq
            rows += [
                Row(seq, topic, bytes(payload))
                for seq, topic, payload in self.db.execute(
                    "SELECT seq, topic, payload FROM stage WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after, limit - len(rows)),
                )
            ]
        return rows

    def delete(self, seqs: Iterable[int]) -> int:
        seqs = list(seqs)
        count = size = 0
        if self.rows:
            with self.db:
                count, size = delete_counted(self.db, "stage", seqs, also=("unsynced",))
            self.rows -= count
            self.bytes -= size
        if count < len(seqs) and self.disk.rows:
            on_disk = seqs
            if count:  # only those not found in the stage; card seqs are the lower ones
                first_staged = self._first_staged()
                on_disk = [s for s in seqs if first_staged is None or s < first_staged]
            count += self.disk.delete(on_disk)
        return count

    def correct_clock(
        self, boot: str, wall_minus_monotonic: float, restamp: Callable[[bytes, float], bytes]
    ) -> int:
        fixed = self.disk.correct_clock(boot, wall_minus_monotonic, restamp)
        with self.db:
            count, grown = restamp_unsynced(self.db, "stage", boot, wall_minus_monotonic, restamp)
            self.bytes += grown
        return fixed + count

    def set_limits(self, max_rows: int, max_bytes: int, durability: str) -> None:
        # durability itself can change only at a restart (agent.app.reconfigure.FIXED)
        self.disk.set_limits(max_rows, max_bytes, "full")

    def stats(self) -> OutboxStats:
        disk = self.disk.stats()
        return OutboxStats(
            disk.rows + self.rows,
            disk.bytes + self.bytes,
            disk.dropped,
            self.next_seq,
            disk.recovered_from,
        )

    def tick(self) -> None:
        """Called about once a second: spills what is due."""
        now = self._clock()
        if now - self._last_spill < self.sync_interval or not self.rows:
            return
        first = self.db.execute("SELECT min(at) FROM stage").fetchone()[0]
        if first is None or first > now - ACK_GRACE:
            return
        try:
            self._spill_through(now - ACK_GRACE)
        except (OutboxError, sqlite3.OperationalError) as e:
            log.error("cannot write to the card (%s): readings wait in the RAM stage", e)

    def close(self) -> None:
        """A clean stop: everything staged goes to the card and the stage is removed, so the
        next start (even after a reboot) continues with nothing lost and no gap in seq."""
        self._spill_through(None)
        self.disk.next_seq = self.next_seq
        self.disk.close()
        self.db.close()
        for suffix in ("", "-wal", "-shm", ".lock"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(self.stage_file) + suffix)
        os.close(self._lock)

    # -- inside ---------------------------------------------------------------------------

    def _reserve(self, highest: int) -> None:
        if highest >= self._reserved:
            self.disk.reserve_through(highest + SEQ_BLOCK)
            self._reserved = highest + SEQ_BLOCK + 1

    def _first_staged(self) -> Optional[int]:
        first: Optional[int] = self.db.execute("SELECT min(seq) FROM stage").fetchone()[0]
        return first

    def _spill_through(self, accepted_before: Optional[float]) -> None:
        """Moves staged rows accepted before that moment (None: all) to the card in one
        fsync'd transaction."""
        where, args = ("", ()) if accepted_before is None else ("WHERE at <= ?", (accepted_before,))
        staged = self.db.execute(
            f"SELECT seq, topic, payload FROM stage {where} ORDER BY seq", args
        ).fetchall()
        marks = self.db.execute(
            "SELECT u.seq, u.boot, u.monotonic FROM unsynced u JOIN stage s USING (seq) "
            + where.replace("at", "s.at"),
            args,
        ).fetchall()
        rows = [(seq, topic, bytes(payload)) for seq, topic, payload in staged]
        self._last_spill = self._clock()
        if not rows:
            return
        try:
            self.disk.append_many(
                [(topic, _made(payload)) for _, topic, payload in rows],
                [seq for seq, _, _ in rows],
            )
        except OutboxError:
            # The card counted these as lost, but they are still here, in the stage.
            self.disk.dropped -= len(rows)
            raise
        self.disk.mark_unsynced(marks)
        last = staged[-1][0]
        with self.db:
            self.db.execute("DELETE FROM stage WHERE seq <= ?", (last,))
            self.db.execute("DELETE FROM unsynced WHERE seq <= ?", (last,))
        self.rows -= len(staged)
        self.bytes -= sum(len(t.encode()) + len(p) for _, t, p in rows)
        self.spilled += len(staged)

    def _drop_staged(self) -> None:
        """The card has refused spills and the stage is at its RAM bound: the oldest staged
        readings go, counted in `dropped` like any other."""
        with self.db:
            victims = self.db.execute(
                "SELECT seq, length(topic) + length(payload) FROM stage ORDER BY seq"
            ).fetchall()
            freed, gone = 0, 0
            for _seq, size in victims:
                if self.bytes - freed <= STAGE_MAX_BYTES // 2:
                    break
                freed += size
                gone += 1
            if gone:
                last = victims[gone - 1][0]
                self.db.execute("DELETE FROM stage WHERE seq <= ?", (last,))
                self.db.execute("DELETE FROM unsynced WHERE seq <= ?", (last,))
        self.rows -= gone
        self.bytes -= freed
        self.disk.dropped += gone
        log.error("the card takes no spills: dropped the %d oldest staged readings", gone)


def _preallocate(wal: Path) -> None:
    """Not on a nearly full card: there the space is worth more than the journal commits."""
    try:
        size = wal.stat().st_size
        st = os.statvfs(wal.parent)
        if size >= WAL_PREALLOCATE or st.f_bavail * st.f_frsize < MIN_FREE_BYTES + WAL_PREALLOCATE:
            return
        with open(wal, "r+b") as f:
            f.seek(size)
            f.write(bytes(WAL_PREALLOCATE - size))
            os.fsync(f.fileno())
    except OSError as e:  # no room, or no WAL yet: spills grow it as they go
        log.debug("WAL not preallocated: %s", e)


def _made(payload: bytes) -> Callable[[int], bytes]:
    """A payload already made (it carries its seq): what append_many wants for it."""
    return lambda _seq: payload


Buffer = Union[Outbox, StagedOutbox]


def open_buffer(
    path: Path,
    *,
    max_rows: int,
    max_bytes: int,
    durability: str,
    stage_dir: Optional[Path] = None,
    sync_interval: float = DEFAULT_SYNC_INTERVAL,
) -> Buffer:
    """The buffer the config asks for: "staged" (the default), or a card-only Outbox."""
    if durability == "staged":
        return StagedOutbox(
            path,
            max_rows=max_rows,
            max_bytes=max_bytes,
            stage_dir=stage_dir,
            sync_interval=sync_interval,
        )
    return Outbox(path, max_rows=max_rows, max_bytes=max_bytes, durability=durability)
