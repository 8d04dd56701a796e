"""A small record kept in place in one file: two slots, each checksummed, written in turn.

Each write goes to the slot that does not hold the newest record, with one pwrite and one
fdatasync: the file's size and its directory never change, so the card sees one data block
and a flush (a new file per change, tmp + fsync + rename + directory fsync, cost ~66 KB and 4
flushes for ~0.7 KB: /work/shared/notes/storage-measurement.md). A power cut mid-write tears
at most the slot being written; its CRC fails and the other slot, one change older, is read.

Layout: the file is two slots of slot_size bytes (a power of two, at least 4 KiB). A slot is
HEADER (magic, generation, length, CRC-32 of generation, length and data) then the data. The
newest record is the valid slot with the highest generation. A record that outgrows its slot
is written once into a new, larger file, replaced atomically.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Optional

from agent.common.seq_floor import write_durably

MAGIC = b"RAS1"
HEADER = struct.Struct("<4sQII")  # magic, generation, length, crc32
MIN_SLOT = 4096


class SlotFileError(Exception):
    """The file exists but holds no valid record (both slots torn, or another format)."""


def _crc(generation: int, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(struct.pack("<QI", generation, len(data))))


class SlotFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.generation = 0
        self.slot_size = 0  # 0: no file of this format yet; the next write creates one
        self._fd: Optional[int] = None

    def read(self) -> Optional[bytes]:
        """The newest valid record; None if there is no file. SlotFileError if there is a
        file but no valid record in it (a file of the old, plain format included: the
        caller may read that itself)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        size = len(raw) // 2
        best: Optional[tuple[int, bytes]] = None
        if size >= MIN_SLOT and len(raw) == 2 * size:
            for slot in (raw[:size], raw[size:]):
                magic, generation, length, crc = HEADER.unpack_from(slot)
                data = slot[HEADER.size : HEADER.size + length]
                if magic != MAGIC or len(data) != length or _crc(generation, data) != crc:
                    continue
                if best is None or generation > best[0]:
                    best = (generation, data)
        if best is None:
            raise SlotFileError(f"{self.path} holds no valid record")
        self.generation, self.slot_size = best[0], size
        return best[1]

    def write(self, data: bytes) -> None:
        """Stores `data` as the newest record, durably (fdatasync) before returning."""
        generation = self.generation + 1
        record = HEADER.pack(MAGIC, generation, len(data), _crc(generation, data)) + data
        if len(record) > self.slot_size:
            self._create(generation, record)
        else:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY)
            os.pwrite(self._fd, record, (generation % 2) * self.slot_size)
            os.fdatasync(self._fd)
        self.generation = generation

    def _create(self, generation: int, record: bytes) -> None:
        """A new file (first write, another format, or a record too big for its slot)."""
        size = MIN_SLOT
        while size < 2 * len(record):
            size *= 2
        slots = [bytes(size), bytes(size)]
        slots[generation % 2] = record + bytes(size - len(record))
        self.close()
        write_durably(self.path, b"".join(slots))
        self.slot_size = size

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
