"""Base of simulated Sensirion chips: commands in, CRC-protected words out.

Like the real parts, a chip NACKs a read while it is still executing a command or when it has
nothing to say, and ignores a command whose argument words fail their CRC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from drivers.sensirion import crc8, pack_words
from drivers.sim.bus import RecentList, SimChip, nack


class SensirionChip(SimChip):
    command_width = 2

    def __init__(self) -> None:
        self.corrupt_checksum = False  # fault: the next replies carry a wrong CRC
        self.commands: RecentList[int] = RecentList()  # commands received, in order
        self._reply = b""
        self._ready_at = 0.0

    def write(self, data: bytes) -> None:
        if self.busy():
            raise nack()  # the datasheets: no commands are accepted during execution
        w = self.command_width
        command = int.from_bytes(data[:w], "big")
        raw_args = data[w:]
        args = []
        for i in range(0, len(raw_args) - 2, 3):
            pair = raw_args[i : i + 2]
            if crc8(pair) != raw_args[i + 2]:
                return  # a corrupt argument: the chip drops the command
            args.append(int.from_bytes(pair, "big"))
        self.commands.append(command)
        self._reply = b""
        result = self.execute(command, args)
        if result is not None:
            words, duration = result
            self.reply(words, duration)

    def execute(self, command: int, args: Sequence[int]) -> Optional[tuple[Sequence[int], float]]:
        """Runs one command: returns (reply words, execution time in s), or None for no reply.
        Raise nack() for a command the chip does not know or cannot take in its state."""
        raise NotImplementedError

    def reply(self, words: Sequence[int], duration: float = 0.0) -> None:
        self._reply = pack_words(words)
        self._ready_at = self.clock() + duration

    def busy(self) -> bool:
        return self.clock() < self._ready_at

    def read(self, length: int) -> bytes:
        if self.busy() or not self._reply:
            raise nack()
        data = bytearray(self._reply[:length])
        self._reply = b""
        if self.corrupt_checksum and len(data) >= 3:
            data[2] ^= 0xFF
        return bytes(data)
