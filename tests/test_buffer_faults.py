"""The buffer under storage faults: a corrupt database, an unusable state directory, a full disk.

Real SQLite files throughout; the full disk is a real small filesystem (tmpfs) when this process
may mount one, as CI's root can, and otherwise SQLite's own size limit (max_page_count).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.common.seq_floor import BLOCK as SEQ_FLOOR_BLOCK
from agent.pipeline.outbox import Outbox, OutboxError
from tests.conftest import REPO, node_config


def payload(seq: int) -> bytes:
    return f'{{"seq":{seq},"pad":"{"x" * 200}"}}'.encode()


def make(path: Path, **kw: object) -> Outbox:
    args: dict = {"max_rows": 10**6, "max_bytes": 10**9, "durability": "full"}
    args.update(kw)
    return Outbox(path, **args)


def test_a_corrupt_database_is_moved_aside_and_the_sequence_carries_on(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    box = make(path)
    last = [box.append("t", payload) for _ in range(300)][-1]
    box.close()
    original = path.read_bytes()
    with open(path, "r+b") as f:  # a torn write: garbage over a few pages in the middle
        f.seek(8 * 1024)
        f.write(os.urandom(6 * 1024))
    box = make(path)
    stats = box.stats()
    assert stats.recovered_from is not None and stats.recovered_from.startswith(str(path))
    moved = Path(stats.recovered_from)
    assert moved.exists() and moved.stat().st_size == len(original)  # kept, never deleted
    assert stats.rows == 0
    # Above every seq the old database handed out, by the floor kept beside it.
    seq = box.append("t", payload)
    assert last < seq <= last + SEQ_FLOOR_BLOCK + 1
    assert box.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    path.write_bytes(b"this is not an SQLite database, just a file an editor left here\n" * 20)
    box = make(path)
    assert box.stats().recovered_from is not None
    assert box.append("t", payload) == 1  # no floor file: nothing was ever handed out


def test_an_unusable_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    with pytest.raises(OutboxError, match=r"cannot open the buffer .*state/buffer\.sqlite"):
        make(blocker / "buffer.sqlite")
    config = tmp_path / "node.toml"
    config.write_text(node_config(1, blocker))
    result = subprocess.run([sys.executable, "-m", "agent", "run", str(config)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 3, result.stderr
    # The agent's lock in the state directory is its first use of it (agent.app.node_lock).
    assert "cannot open the state directory" in result.stderr and "writable" in result.stderr
    assert "Traceback" not in result.stderr


@contextlib.contextmanager
def small_disk(tmp_path: Path, kib: int) -> Iterator[tuple[Path, str]]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    try:
        yield mount, "tmpfs" if done.returncode == 0 else "max_page_count"
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


def test_disk_full_drops_the_oldest_counts_them_and_recovers(tmp_path: Path) -> None:
    with small_disk(tmp_path, 512) as (disk, kind):
        # A disk this small needs a smaller free-space margin than a real card's 4 MiB.
        box = make(disk / "buffer.sqlite", min_free_bytes=160 * 1024, reserve_bytes=64 * 1024)
        if kind == "max_page_count":
            box.db.execute("PRAGMA max_page_count=400")  # 400 KiB at 1 KiB pages
        stored = failed = 0
        for _ in range(4000):  # ~1 MB of readings into half a MiB
            try:
                box.append("t", payload)
                stored += 1
            except OutboxError:
                failed += 1
        stats = box.stats()
        print(f"{kind}: stored {stored}, refused {failed}, dropped {stats.dropped}, "
              f"kept {stats.rows}")  # fmt: skip
        assert stats.dropped > 0 and stats.rows > 0
        assert stats.rows + stats.dropped == stored + failed  # every reading accounted for
        # The oldest went first: what is kept is the newest, in order, without gaps.
        seqs = [r.seq for r in box.fetch(0, 10**6)]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert seqs[-1] == stored + failed
        assert box.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Space returns (the backlog is delivered): appends work again without dropping.
        box.delete(seqs)
        before = box.stats().dropped
        for _ in range(50):
            box.append("t", payload)
        assert box.stats().dropped == before
        box.close()
        reopened = make(disk / "buffer.sqlite", min_free_bytes=160 * 1024, reserve_bytes=64 * 1024)
        assert reopened.stats().rows == 50
        reopened.close()


def test_sqlite_reports_full_the_way_the_outbox_expects(tmp_path: Path) -> None:
    # The outbox recognises a full disk by SQLite's message; pin it so an upgrade cannot
    # silently turn disk-full handling off.
    db = sqlite3.connect(str(tmp_path / "x.sqlite"))
    db.execute("PRAGMA max_page_count=2")
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        db.execute("CREATE TABLE t(x)")
        db.executemany("INSERT INTO t VALUES (?)", [(b"x" * 2000,)] * 10)
