"""A floor for the buffer's sequence numbers, kept in a file beside the database.

If the database is lost (corrupt, deleted), a fresh one continues above every seq ever handed
out, so consumers de-duplicating on seq never mistake new readings for old ones. The floor is
raised BLOCK ahead of use, so the file is written once per BLOCK readings, atomically and
fsync'd.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("roomagent.outbox")

BLOCK = 10000


class SeqFloor:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.value = self._read()

    def _read(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            log.warning("%s is not a number; ignored", self.path)
            return 0

    def cover(self, highest: int) -> None:
        """Makes sure the floor is above `highest`, the largest seq about to be handed out."""
        if highest < self.value:
            return
        floor = highest + BLOCK
        try:
            write_durably(self.path, f"{floor}\n".encode())
        except OSError as e:  # e.g. the disk is full: the database's own counter still holds
            log.warning("cannot record the sequence floor in %s: %s", self.path, e)
            return
        self.value = floor


def write_durably(path: Path, data: bytes) -> None:
    """Replaces the file atomically: a power cut leaves the old content or the new, whole."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
