"""The SQLite outbox: real SQLite files, reopened as a restarted agent would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.pipeline.outbox import SEQ_RESERVE_BLOCK, Outbox


def payload(seq: int) -> bytes:
    return f'{{"seq":{seq}}}'.encode()


def make(path: Path, **kw: object) -> Outbox:
    args: dict = {"max_rows": 1000, "max_bytes": 10**6, "durability": "full"}
    args.update(kw)
    return Outbox(path, **args)


def test_append_fetch_delete_in_order(tmp_path: Path) -> None:
    box = make(tmp_path / "b.sqlite")
    seqs = [box.append("t/a", payload) for _ in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    rows = box.fetch(0, 3)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].payload == b'{"seq":1}' and rows[0].topic == "t/a"
    assert [r.seq for r in box.fetch(3, 10)] == [4, 5]
    assert box.delete([1, 2, 99]) == 2
    assert box.stats().rows == 3
    assert [r.seq for r in box.fetch(0, 10)] == [3, 4, 5]


def test_wal_mode_and_full_sync_on_disk(tmp_path: Path) -> None:
    box = make(tmp_path / "b.sqlite")
    assert box.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert box.db.execute("PRAGMA page_size").fetchone()[0] == 1024


def test_sequence_continues_after_clean_restart_without_gap(tmp_path: Path) -> None:
    box = make(tmp_path / "b.sqlite")
    for _ in range(3):
        box.append("t", payload)
    box.delete([1, 2, 3])  # everything delivered: the table is empty
    box.close()
    box = make(tmp_path / "b.sqlite")
    assert box.append("t", payload) == 4


@pytest.mark.parametrize("durability", ["full", "normal"])
def test_sequence_never_repeats_after_a_crash(tmp_path: Path, durability: str) -> None:
    box = make(tmp_path / "b.sqlite", durability=durability)
    last = max(box.append("t", payload) for _ in range(10))
    box.delete(range(1, 11))
    # No close(): the process died. A new connection sees only what was committed.
    box2 = make(tmp_path / "b.sqlite", durability=durability)
    first = box2.append("t", payload)
    assert first > last
    if durability == "normal":
        assert first == 1 + SEQ_RESERVE_BLOCK  # resumes after the reserved block


def test_normal_mode_reserved_block_survives_rollback_of_seq_next(tmp_path: Path) -> None:
    """Simulates a power cut that undid the last commits, seq_next included."""
    path = tmp_path / "b.sqlite"
    box = make(path, durability="normal")
    for _ in range(5):
        box.append("t", payload)
    box.db.close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM outbox")
    db.execute("UPDATE meta SET value = 1 WHERE key = 'seq_next'")
    db.commit()
    db.close()
    assert make(path, durability="normal").append("t", payload) > 5


def test_full_buffer_drops_oldest_and_counts(tmp_path: Path) -> None:
    box = make(tmp_path / "b.sqlite", max_rows=100)
    for _ in range(130):
        box.append("t", payload)
    stats = box.stats()
    assert stats.rows == 100 and stats.dropped == 30
    assert box.fetch(0, 1)[0].seq == 31
    box.close()
    assert make(tmp_path / "b.sqlite", max_rows=100).stats().dropped == 30  # persisted


def test_byte_bound(tmp_path: Path) -> None:
    box = make(tmp_path / "b.sqlite", max_bytes=65536)
    big = b"x" * 1000
    for _ in range(100):
        box.append("t", lambda seq: big)
    stats = box.stats()
    assert stats.bytes <= 65536
    assert stats.rows == 65536 // 1001
    assert stats.dropped == 100 - stats.rows
    # The in-memory accounting matches the file.
    on_disk = box.db.execute("SELECT sum(length(topic) + length(payload)) FROM outbox").fetchone()
    assert on_disk[0] == stats.bytes


def test_append_many_is_one_transaction(tmp_path: Path) -> None:
    box = make(tmp_path / "b.sqlite")

    def fail(seq: int) -> bytes:
        raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError):
        box.append_many([("t", payload), ("t", fail)])
    assert box.stats().rows == 0
    assert box.append("t", payload) == 1  # the failed batch consumed no sequence numbers


def test_fetch_returns_any_bytes_and_any_topic_exactly_in_order(tmp_path: Path) -> None:
    """fetch() reads rows through SQL aggregates (hex): arbitrary payload bytes (NUL, 0xFF,
    separators) and non-ASCII topics must come back byte for byte, oldest first."""
    box = make(tmp_path / "b.sqlite")
    items = [
        ("t/é/ü", b"\x00\xff,; \x00"),
        ("t/a", b""),
        ("t/,;x y", bytes(range(256))),
        ("t/b", b'{"seq":4}'),
    ]
    for topic, data in items:
        box.append(topic, lambda seq, data=data: data)
    rows = box.fetch(0, 10)
    assert [(r.seq, r.topic, r.payload) for r in rows] == [
        (i + 1, topic, data) for i, (topic, data) in enumerate(items)
    ]
    assert [r.seq for r in box.fetch(1, 2)] == [2, 3]
    assert box.fetch(4, 10) == []
    # A run of seqs is deleted as a range: only those, and counted.
    assert box.delete([3, 2]) == 2
    assert [r.seq for r in box.fetch(0, 10)] == [1, 4]
    assert box.stats().rows == 2
