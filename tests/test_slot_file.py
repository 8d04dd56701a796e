"""The control state's file (issue 19): in place, two checksummed slots, a torn write survived."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.common.slot_file import HEADER, MIN_SLOT, SlotFile, SlotFileError
from agent.common.state_store import StateStore


def test_writes_go_in_place_alternating_slots(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    f = SlotFile(path)
    assert f.read() is None
    f.write(b'{"a":1}')
    inode, size = path.stat().st_ino, path.stat().st_size
    assert size == 2 * MIN_SLOT
    for i in range(2, 6):
        f.write(f'{{"a":{i}}}'.encode())
    assert (path.stat().st_ino, path.stat().st_size) == (inode, size)  # same file, same size
    raw = path.read_bytes()
    # generation 5 in slot 1, generation 4 in slot 0: the one before is always kept
    assert raw[MIN_SLOT + HEADER.size :].startswith(b'{"a":5}')
    assert raw[HEADER.size :].startswith(b'{"a":4}')
    assert SlotFile(path).read() == b'{"a":5}'


def test_a_torn_write_leaves_the_change_before(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    f = SlotFile(path)
    f.write(b'{"relay":"on"}')
    f.write(b'{"relay":"off"}')  # generation 2, slot 0
    with open(path, "r+b") as raw:  # power cut half way through writing slot 0
        raw.seek(HEADER.size + 5)
        raw.write(b"\xff" * 7)
    assert SlotFile(path).read() == b'{"relay":"on"}'
    with open(path, "r+b") as raw:  # and slot 1 as well: nothing valid is left
        raw.seek(MIN_SLOT + 2)
        raw.write(b"\x00" * 4)
    with pytest.raises(SlotFileError):
        SlotFile(path).read()


def test_a_record_that_outgrows_its_slot_gets_a_bigger_file(tmp_path: Path) -> None:
    path = tmp_path / "s"
    f = SlotFile(path)
    f.write(b"x" * 100)
    big = b"y" * (3 * MIN_SLOT)
    f.write(big)
    assert path.stat().st_size >= 4 * len(big)
    assert SlotFile(path).read() == big
    f.write(b"z")
    assert SlotFile(path).read() == b"z"


def test_state_store_reads_the_earlier_plain_json_and_converts_it(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    path.write_text(json.dumps({"relay.heat": {"on": True}}))
    store = StateStore(path)
    assert store.get("relay.heat") == {"on": True}
    store.set("relay.heat", {"on": False})
    assert store.flush()
    assert not path.read_bytes().startswith(b"{")
    assert StateStore(path).get("relay.heat") == {"on": False}
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_state_store_flush_is_one_small_write_in_place(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    store = StateStore(path)
    store.set("k", 1)
    store.flush()
    inode = path.stat().st_ino
    for i in range(20):
        store.set("k", i + 2)
        store.flush()
    assert path.stat().st_ino == inode and not list(tmp_path.glob("*.tmp"))
    assert StateStore(path).get("k") == 21
    assert os.path.getsize(path) == 2 * MIN_SLOT
