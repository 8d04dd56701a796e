"""Stale RAM stages: the stages of agents that died and whose buffers nobody will open again.

An agent killed with SIGKILL leaves its stage (agent/pipeline/staged_outbox.py) in the stage
directory: that is the point, its next start reads it and loses nothing. A stage whose agent never
starts again (a test's, or one of a buffer that was moved or deleted) stays in RAM until the next
reboot. At start, an agent removes the other stages of its directory that are stale, and only
those that hold nothing still to deliver:

- its agent is dead: nobody holds its lock file (flock; the kernel releases it at death), and
  the lock is held while it is removed, so an agent starting on it meanwhile waits its turn;
- and it holds no reading, or every reading in it is already on its buffer's card (a kill
  between a spill's commit and the stage's delete: what the agent's own recovery drops), or
  its buffer's directory no longer exists, so no agent can ever deliver it (logged with the
  count of readings abandoned).

A stage that still holds readings its buffer could deliver is kept for that buffer's agent.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from pathlib import Path
from typing import Optional

log = logging.getLogger("roomagent.outbox")

SUFFIXES = ("", "-wal", "-shm")


def sweep(stage_dir: Path, keep: Path) -> list[Path]:
    """Removes the stale stages in stage_dir other than `keep`; returns those removed."""
    removed = []
    for stage in sorted(stage_dir.glob("*.stage")):
        if stage == keep:
            continue
        try:
            if _sweep_one(stage):
                removed.append(stage)
        except (OSError, sqlite3.Error) as e:  # someone else's file: never a reason to stop
            log.debug("stage %s left as it is: %s", stage, e)
    return removed


def _sweep_one(stage: Path) -> bool:
    lock = Path(f"{stage}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its agent is alive
        why = _stale(stage)
        if why is None:
            return False
        for suffix in SUFFIXES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{stage}{suffix}")
        os.unlink(lock)  # last, still held: an agent starting on it now makes a new one
        log.info("removed the stale RAM stage %s: %s", stage, why)
        return True
    finally:
        os.close(fd)


def _stale(stage: Path) -> Optional[str]:
    """Why the stage (whose lock is held) may go, or None if it must stay."""
    with contextlib.closing(sqlite3.connect(str(stage))) as db:
        rows, top = db.execute("SELECT count(*), coalesce(max(seq), 0) FROM stage").fetchone()
        has_meta = db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()[0]
        row = (
            db.execute("SELECT value FROM meta WHERE key = 'buffer'").fetchone()
            if has_meta
            else None
        )
    if rows == 0:
        return "it was empty"
    if row is None:
        return None  # a stage of an earlier version: its buffer is not known
    buffer = Path(row[0])
    if not buffer.parent.exists():
        log.warning("the RAM stage %s holds %d readings of %s, whose directory no longer exists: "
                    "nothing can deliver them", stage, rows, buffer)  # fmt: skip
        return f"its buffer's directory {buffer.parent} is gone ({rows} readings abandoned)"
    if buffer.exists() and top <= _card_top(buffer):
        return f"its {rows} readings are all on the card of {buffer}"
    return None


def _card_top(buffer: Path) -> int:
    """The highest seq in the card's outbox, read without creating anything beside it."""
    wal = Path(f"{buffer}-wal").exists() and Path(f"{buffer}-shm").exists()
    uri = buffer.resolve().as_uri() + ("?mode=ro" if wal else "?immutable=1")
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        top: int = db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0]
    return top
