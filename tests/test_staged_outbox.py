"""The buffer's RAM stage (issue 19): real SQLite files, a clock passed in, restarts and power
cuts played by reopening the files as a restarted agent would (a power cut: the stage's RAM
directory emptied)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from agent.pipeline.outbox import OutboxError
from agent.pipeline.staged_outbox import (
    ACK_GRACE,
    SEQ_BLOCK,
    WAL_PREALLOCATE,
    StagedOutbox,
    open_buffer,
)

READING = "n/telemetry/co2"
EVENT = "n/events"


def payload(seq: int) -> bytes:
    return f'{{"seq":{seq}}}'.encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock, **kw: object) -> StagedOutbox:
    args: dict = {"max_rows": 10**6, "max_bytes": 10**9, "sync_interval": 10.0}
    args.update(kw)
    return StagedOutbox(tmp_path / "buffer.sqlite", stage_dir=tmp_path / "run", clock=clock, **args)


def die(box: StagedOutbox) -> None:
    """What a kill leaves: files as they are, the process's descriptors (and lock) gone."""
    box.db.close()
    box.disk.db.close()
    os.close(box._lock)


def on_card(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "buffer.sqlite") as db:
        return [r[0] for r in db.execute("SELECT seq FROM outbox ORDER BY seq")]


def test_readings_acknowledged_in_time_never_reach_the_card(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, clock)
    for _ in range(50):
        box.append(READING, payload)
    rows = box.fetch(0, 100)
    assert [r.seq for r in rows] == list(range(1, 51)) and rows[0].payload == b'{"seq":1}'
    assert box.delete([r.seq for r in rows]) == 50
    clock.now += 60
    box.tick()
    assert on_card(tmp_path) == [] and box.spilled == 0 and box.stats().rows == 0


def test_unacknowledged_readings_are_spilled_in_one_batch_per_interval(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, clock)
    for _ in range(5):
        box.append(READING, payload)
        clock.now += 1
    box.tick()  # 5 s since the start: not due yet
    assert on_card(tmp_path) == []
    clock.now += 5.5  # 10.5 s: due; seqs 1..5 were accepted 6.5..2.5 s ago
    box.append(READING, payload)  # seq 6, just now: probably on the wire, stays staged
    box.tick()
    assert on_card(tmp_path) == [1, 2, 3, 4, 5]
    assert [r.seq for r in box.fetch(0, 10)] == [1, 2, 3, 4, 5, 6]  # one ordered buffer
    assert [r.seq for r in box.fetch(3, 2)] == [4, 5]
    assert [r.seq for r in box.fetch(4, 10)] == [5, 6]
    clock.now += ACK_GRACE + 1
    box.tick()  # not another interval yet: 6 waits
    assert on_card(tmp_path) == [1, 2, 3, 4, 5]
    assert box.delete([2, 6]) == 2
    assert [r.seq for r in box.fetch(0, 10)] == [1, 3, 4, 5]
    assert box.stats().rows == 4


def test_events_are_staged_spilled_in_order_and_dropped_last(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, clock, max_rows=100)
    box.append(READING, payload)
    assert box.append(EVENT, payload) == 2
    assert on_card(tmp_path) == []  # in RAM, like a reading
    box.append(READING, payload)
    clock.now += 11
    box.tick()
    assert on_card(tmp_path) == [1, 2, 3]
    for _ in range(150):  # past max_rows on the card: readings go, the event stays
        box.append(READING, payload)
        clock.now += 11
        box.tick()
    kept = [(r.seq, r.topic) for r in box.fetch(0, 1000)]
    assert (2, EVENT) in kept and (1, READING) not in kept
    assert box.stats().dropped == len([s for s in range(1, 154)]) - len(kept)


def test_a_kill_loses_nothing_staged_and_never_reuses_a_seq(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, clock)
    for _ in range(7):
        box.append(READING, payload)
    box.delete([1, 2])
    die(box)  # no close(): the stage's files stay in RAM
    again = make(tmp_path, clock)
    assert [r.seq for r in again.fetch(0, 100)] == [3, 4, 5, 6, 7]
    assert again.append(READING, payload) > 7


def test_a_power_cut_keeps_what_was_spilled_and_never_reuses_a_seq(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, clock)
    for _ in range(4):
        box.append(READING, payload)
    clock.now += 11
    box.tick()  # 1..4 on the card
    for _ in range(3):
        box.append(READING, payload)  # 5..7 in RAM only
    die(box)
    shutil.rmtree(tmp_path / "run")  # the power cut: RAM is gone
    again = make(tmp_path, clock)
    assert [r.seq for r in again.fetch(0, 100)] == [1, 2, 3, 4]
    first = again.append(READING, payload)
    assert 7 < first <= 1 + SEQ_BLOCK + 1  # above the reservation, never a reuse


def test_a_clean_stop_moves_everything_to_the_card_without_a_gap(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, clock)
    for _ in range(3):
        box.append(READING, payload)
    box.close()
    assert on_card(tmp_path) == [1, 2, 3]
    assert not list((tmp_path / "run").iterdir())  # the stage is removed
    again = make(tmp_path, clock)
    assert again.append(READING, payload) == 4


def test_rows_both_on_the_card_and_staged_after_a_kill_are_kept_once(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, clock)
    for _ in range(3):
        box.append(READING, payload)
    staged = box.db.execute("SELECT * FROM stage").fetchall()
    clock.now += 11
    box.tick()  # spilled; now the stage as it was had the kill come before its delete
    box.db.executemany("INSERT INTO stage VALUES (?, ?, ?, ?)", staged)
    box.db.commit()
    die(box)
    again = make(tmp_path, clock)
    assert [r.seq for r in again.fetch(0, 10)] == [1, 2, 3]
    assert again.stats().rows == 3


def test_clock_correction_reaches_staged_and_spilled_readings(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, clock)
    box.append(READING, payload, ("boot-1", 5.0))
    clock.now += 11
    box.tick()  # seq 1 on the card, with its mark
    box.append(READING, payload, ("boot-1", 6.0))  # seq 2 staged
    fixed = box.correct_clock("boot-1", 100.0, lambda p, t: p + f" at {t:g}".encode())
    assert fixed == 2
    assert [r.payload for r in box.fetch(0, 10)] == [b'{"seq":1} at 105', b'{"seq":2} at 106']


def test_durability_full_is_the_card_only_outbox(tmp_path: Path) -> None:
    box = open_buffer(tmp_path / "b.sqlite", max_rows=100, max_bytes=10**6, durability="full")
    assert not isinstance(box, StagedOutbox)
    assert box.db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_second_agent_on_the_same_buffer_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    box = make(tmp_path, clock)
    with pytest.raises(OutboxError, match="another agent is using this buffer"):
        make(tmp_path, clock)
    box.close()
    make(tmp_path, clock).close()  # free again after a clean stop


def test_the_cards_wal_is_written_full_length_once_so_spills_overwrite_in_place(
    tmp_path: Path,
) -> None:
    clock = Clock()
    box = make(tmp_path, clock)
    wal = Path(f"{tmp_path / 'buffer.sqlite'}-wal")
    size = wal.stat().st_size
    assert size == WAL_PREALLOCATE
    for _ in range(30):
        box.append(READING, payload)
        clock.now += 11
        box.tick()
    assert wal.stat().st_size == size  # 30 spills, not a byte of growth
    die(box)  # and SQLite reads the zero tail as the end of the log after a kill
    again = make(tmp_path, clock)
    assert [r.seq for r in again.fetch(0, 100)] == list(range(1, 31))
    assert again.disk.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
