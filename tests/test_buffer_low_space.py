"""The buffer on a nearly full card (issue 19): a real small tmpfs, a real SQLite outbox.

A connected node with under 4 MiB free once dropped every reading and every event: the cap
for low space was the buffer's size at that moment, 0 when it was empty, so each new row was
removed by the transaction that added it. These tests hold the repaired rules: the cap never
falls below what a connected node needs in flight, events outlive readings, and `dropped` is
exactly what never reached the broker.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.pipeline.outbox import MIN_FREE_BYTES, Outbox
from agent.pipeline.staged_outbox import StagedOutbox

READING = "node/telemetry/co2"
EVENT = "node/events"


def payload(seq: int) -> bytes:
    return f'{{"seq":{seq},"pad":"{"x" * 200}"}}'.encode()


@contextlib.contextmanager
def disk_with_free(tmp_path: Path, free_kib: int) -> Iterator[Path]:
    """A real tmpfs with about free_kib KiB free (statvfs is what the outbox looks at)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={free_kib}k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"these tests need to mount a tmpfs (root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def deliver(box: Outbox) -> list[int]:
    """What a connected forwarder does: read what is waiting, have it acknowledged, delete."""
    rows = box.fetch(0, 10**6)
    box.delete([r.seq for r in rows])
    return [r.seq for r in rows]


def test_a_connected_node_with_2_7_mib_free_delivers_every_reading_and_event(
    tmp_path: Path,
) -> None:
    with disk_with_free(tmp_path, 2765) as disk:  # 2.7 MiB: under the 4 MiB margin
        box = Outbox(disk / "buffer.sqlite", max_rows=10**6, max_bytes=256 * 1024 * 1024)
        assert box.min_free_bytes == MIN_FREE_BYTES
        delivered: list[int] = []
        offered = 0
        for i in range(400):  # well past the 50 appends after which space is checked
            box.append(EVENT if i % 10 == 0 else READING, payload)
            offered += 1
            if i % 4 == 3:  # acknowledged in small batches, as the forwarder deletes them
                delivered += deliver(box)
        delivered += deliver(box)
        assert box.max_bytes < box.configured_max_bytes  # the low-space cap is on...
        assert delivered == list(range(1, offered + 1))  # ...and nothing was lost to it
        assert box.stats().dropped == 0
        box.close()


def test_a_disconnected_node_with_2_7_mib_free_keeps_events_and_counts_drops_exactly(
    tmp_path: Path,
) -> None:
    with disk_with_free(tmp_path, 2765) as disk:
        box = Outbox(disk / "buffer.sqlite", max_rows=10**6, max_bytes=256 * 1024 * 1024)
        events = []
        for i in range(6000):  # ~1.4 MB of readings: more than the capped buffer holds
            topic = EVENT if i % 50 == 0 else READING
            seq = box.append(topic, payload)
            if topic == EVENT:
                events.append(seq)
        kept = box.fetch(0, 10**6)
        stats = box.stats()
        assert stats.dropped > 0
        assert [r.seq for r in kept if r.topic == EVENT] == events  # every event survived
        assert stats.rows == len(kept) and stats.rows + stats.dropped == 6000
        # the oldest readings went, the newest are kept in order without gaps among readings
        readings = [r.seq for r in kept if r.topic == READING]
        assert readings == sorted(readings) and readings[-1] == 6000
        assert box.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        box.close()


def test_rows_dropped_after_they_were_read_ahead_and_then_delivered_are_not_counted(
    tmp_path: Path,
) -> None:
    """The forwarder reads rows ahead into memory; if the bound drops them from the file
    meanwhile they are still published. Acknowledged, they were not lost."""
    box = Outbox(tmp_path / "b.sqlite", max_rows=100, max_bytes=10**9)
    for _ in range(100):
        box.append(READING, payload)
    read_ahead = box.fetch(0, 30)  # in the forwarder's memory, about to be published
    for _ in range(50):
        box.append(READING, payload)  # the bound drops seqs 1..50
    assert box.stats().dropped == 50
    box.delete([r.seq for r in read_ahead])  # 1..30 acknowledged by the broker
    assert box.stats().dropped == 20  # only 31..50 never reached it
    box.close()
    assert Outbox(tmp_path / "b.sqlite", max_rows=100, max_bytes=10**9).stats().dropped == 20


def test_the_row_bound_drops_readings_before_events(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "b.sqlite", max_rows=10, max_bytes=10**9)
    box.append(EVENT, payload)
    for _ in range(15):
        box.append(READING, payload)
    seqs = [(r.seq, r.topic) for r in box.fetch(0, 100)]
    assert seqs[0] == (1, EVENT) and [s for s, _ in seqs[1:]] == list(range(8, 17))
    assert box.stats().dropped == 6


def test_the_staged_buffer_with_2_7_mib_free_keeps_events_and_counts_drops_exactly(
    tmp_path: Path,
) -> None:
    """The same outage through the default buffer: staged in RAM, spilled to the nearly full
    card every interval, where the cap drops the oldest readings."""
    now = [0.0]
    with disk_with_free(tmp_path, 2765) as disk:
        box = StagedOutbox(disk / "buffer.sqlite", max_rows=10**6, max_bytes=256 * 1024 * 1024,
                           stage_dir=tmp_path / "run", clock=lambda: now[0])  # fmt: skip
        events = []
        for i in range(6000):
            topic = EVENT if i % 50 == 0 else READING
            seq = box.append(topic, payload)
            if topic == EVENT:
                events.append(seq)
            now[0] += 0.1
            box.tick()
        box.close()
        box = StagedOutbox(disk / "buffer.sqlite", max_rows=10**6, max_bytes=256 * 1024 * 1024,
                           stage_dir=tmp_path / "run")  # fmt: skip
        kept = box.fetch(0, 10**6)
        stats = box.stats()
        assert stats.dropped > 0
        assert [r.seq for r in kept if r.topic == EVENT] == events
        assert stats.rows == len(kept) and stats.rows + stats.dropped == 6000
        box.close()
