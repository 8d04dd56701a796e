"""Stale RAM stages left by killed agents (issue 19): removed at another agent's start only
when nothing in them can still be delivered; real SQLite files, kills played as in
test_staged_outbox (the process's descriptors and lock gone, its files left as they are)."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from pathlib import Path

from agent.pipeline.staged_outbox import StagedOutbox, stage_path

READING = "n/telemetry/co2"


def payload(seq: int) -> bytes:
    return f'{{"seq":{seq}}}'.encode()


def box(buffer: Path, run: Path) -> StagedOutbox:
    return StagedOutbox(buffer, max_rows=10**6, max_bytes=10**9, stage_dir=run)


def killed(buffer: Path, run: Path, readings: int) -> Path:
    """An agent on `buffer` that accepted `readings` and was killed: returns its stage."""
    b = box(buffer, run)
    for _ in range(readings):
        b.append(READING, payload)
    b.db.close()
    b.disk.db.close()
    os.close(b._lock)
    return b.stage_file


def stage_files(run: Path) -> set[str]:
    return {p.name for p in run.iterdir()}


def seqs_of(stage: Path) -> list[int]:
    with sqlite3.connect(stage) as db:
        return [r[0] for r in db.execute("SELECT seq FROM stage ORDER BY seq")]


def test_a_dead_agents_readings_wait_for_its_own_next_start(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (tmp_path / "a").mkdir()
    stage = killed(tmp_path / "a" / "buffer.sqlite", run, 5)
    other = box(tmp_path / "other.sqlite", run)  # another agent starts: the stage is kept
    assert stage.exists() and seqs_of(stage) == [1, 2, 3, 4, 5]
    other.close()
    again = box(tmp_path / "a" / "buffer.sqlite", run)  # its own agent: all five still there
    assert [r.seq for r in again.fetch(0, 10)] == [1, 2, 3, 4, 5]
    again.close()  # a clean stop moves them to the card and removes the stage
    assert not stage.exists()


def test_an_empty_stage_of_a_dead_agent_is_removed_with_its_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    stage = killed(tmp_path / "a.sqlite", run, 0)
    assert f"{stage.name}.lock" in stage_files(run)
    other = box(tmp_path / "b.sqlite", run)
    assert not any(name.startswith(stage.name) for name in stage_files(run))
    other.close()


def test_a_live_agents_stage_is_never_touched(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (tmp_path / "gone").mkdir()
    live = box(tmp_path / "gone" / "buffer.sqlite", run)
    live.append(READING, payload)
    shutil.rmtree(tmp_path / "gone")  # even with its buffer's directory gone: it holds the lock
    other = box(tmp_path / "b.sqlite", run)
    assert live.stage_file.exists() and seqs_of(live.stage_file) == [1]
    other.close()
    live.db.close()
    live.disk.db.close()
    os.close(live._lock)


def test_a_stage_whose_readings_are_all_on_the_card_is_removed(tmp_path: Path) -> None:
    # A kill between a spill's commit and the stage's delete: the rows are on the card too.
    run = tmp_path / "run"
    buffer = tmp_path / "a.sqlite"
    b = box(buffer, run)
    for _ in range(3):
        b.append(READING, payload)
    rows = b.db.execute("SELECT seq, topic, payload FROM stage ORDER BY seq").fetchall()
    b.disk.append_many([(t, lambda _s, p=bytes(p): p) for _, t, p in rows], [s for s, _, _ in rows])
    b.db.close()
    b.disk.db.close()
    os.close(b._lock)
    assert seqs_of(b.stage_file) == [1, 2, 3]
    other = box(tmp_path / "b.sqlite", run)
    assert not b.stage_file.exists()
    other.close()
    with sqlite3.connect(buffer) as db:  # nothing lost: they are on the card
        assert [r[0] for r in db.execute("SELECT seq FROM outbox ORDER BY seq")] == [1, 2, 3]


def test_a_stage_whose_buffer_directory_is_gone_is_removed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (tmp_path / "t").mkdir()
    stage = killed(tmp_path / "t" / "buffer.sqlite", run, 4)
    shutil.rmtree(tmp_path / "t")  # a test's directory, deleted: nobody can deliver these
    other = box(tmp_path / "b.sqlite", run)
    assert not stage.exists()
    other.close()


def test_a_stage_with_undelivered_readings_and_its_buffer_is_kept_even_if_unknown(
    tmp_path: Path,
) -> None:
    # A stage of an earlier version (no record of its buffer) with readings: kept.
    run = tmp_path / "run"
    (tmp_path / "t").mkdir()
    stage = killed(tmp_path / "t" / "buffer.sqlite", run, 2)
    with sqlite3.connect(stage) as db:
        db.execute("DROP TABLE meta")
    shutil.rmtree(tmp_path / "t")
    other = box(tmp_path / "b.sqlite", run)
    assert stage.exists() and seqs_of(stage) == [1, 2]
    other.close()


def test_an_agent_waits_while_another_start_looks_at_its_stage(tmp_path: Path) -> None:
    # The sweep holds a dead agent's lock for milliseconds; that agent restarting meanwhile
    # must wait, not fail with "another agent is using this buffer".
    run = tmp_path / "run"
    buffer = tmp_path / "a.sqlite"
    stage = killed(buffer, run, 1)
    fd = os.open(f"{stage}.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    import threading

    threading.Timer(0.3, os.close, (fd,)).start()  # released after 0.3 s
    again = box(buffer, run)
    assert [r.seq for r in again.fetch(0, 10)] == [1]
    again.close()
    assert stage_path(buffer, run) == stage
