"""A simulated I2C bus that records the conversation, for tests and `--simulate`."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")

NACK_ERRNO = errno.EREMOTEIO  # 121: what Linux i2c-dev reports when no device acknowledges


@dataclass(frozen=True)
class Transfer:
    """One entry of the bus log: who was addressed, which direction, which bytes."""

    address: int
    kind: str  # "write" or "read"
    data: bytes


# What a simulated bus or chip remembers of its conversation: enough for a test to inspect an
# opening or a few readings. A simulated node runs for days (the demo, the benchmarks), and a
# record of every transfer grew its memory by 0.25 MiB a minute.
RECENT = 500


class RecentList(list[T]):
    """A list that keeps its newest entries only: between RECENT and twice that many."""

    def append(self, item: T) -> None:
        super().append(item)
        if len(self) > 2 * RECENT:
            del self[:-RECENT]


def nack() -> OSError:
    """What a chip's refusal looks like to the driver: Linux i2c-dev's errno 121."""
    return OSError(NACK_ERRNO, "Remote I/O error")


class VirtualClock:
    """Time that passes only when a driver sleeps: tests run at once, chips still see delays.

    Pass it as the bus's clock and its sleep() as the driver's sleep.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: RecentList[float] = RecentList()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


class SimChip:
    """Base of simulated chips: override write() and read().

    Faults every chip can be given, as on a real bus: `nack = True` pulls it off the bus (every
    transfer fails with errno 121) and `reset()` is a brown-out that loses its configuration.
    Chips with checksums also take `corrupt_checksum`, chips with a data-ready flag `stuck`.
    """

    nack = False
    # Set by the bus the chip is attached to, so a chip measures time as its driver sleeps it.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def reset(self) -> None:
        """A brown-out: the chip forgets its configuration, as after power-on."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, length: int) -> bytes:
        raise NotImplementedError


class RegisterChip(SimChip):
    """A chip with an 8-bit register pointer that auto-increments, like most Bosch parts."""

    def __init__(self) -> None:
        self.registers = bytearray(256)
        self.pointer = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.pointer = data[0]
        for value in data[1:]:
            self.write_register(self.pointer, value)
            self.pointer = (self.pointer + 1) & 0xFF

    def write_register(self, register: int, value: int) -> None:
        self.registers[register] = value

    def read(self, length: int) -> bytes:
        out = bytes(self.read_register((self.pointer + i) & 0xFF) for i in range(length))
        self.pointer = (self.pointer + length) & 0xFF
        return out

    def read_register(self, register: int) -> int:
        return self.registers[register]


class SimBus:
    """Has the methods of smbus2.SMBus that drivers use; absent addresses NACK with errno 121."""

    def __init__(
        self,
        chips: Optional[dict[int, SimChip]] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.chips: dict[int, SimChip] = {}
        self.log: RecentList[Transfer] = RecentList()
        self._lock = threading.Lock()
        for address, chip in (chips or {}).items():
            self.attach(address, chip)

    def attach(self, address: int, chip: SimChip) -> None:
        chip.clock = self.clock
        self.chips[address] = chip

    def _chip(self, address: int) -> SimChip:
        chip = self.chips.get(address)
        if chip is None or chip.nack:
            raise OSError(NACK_ERRNO, f"Remote I/O error (no device at 0x{address:02x})")
        return chip

    def _write(self, address: int, data: bytes) -> None:
        with self._lock:
            self.log.append(Transfer(address, "write", bytes(data)))
            self._chip(address).write(bytes(data))

    def _read(self, address: int, length: int) -> bytes:
        with self._lock:
            data = self._chip(address).read(length)
            self.log.append(Transfer(address, "read", data))
            return data

    # smbus2.SMBus API -------------------------------------------------------------------------
    def write_quick(self, i2c_addr: int, force: Optional[bool] = None) -> None:
        # Address and stop, no data: the chip acknowledges its address and does nothing else.
        with self._lock:
            self.log.append(Transfer(i2c_addr, "write", b""))
            self._chip(i2c_addr)

    def read_byte(self, i2c_addr: int, force: Optional[bool] = None) -> int:
        return self._read(i2c_addr, 1)[0]

    def write_byte(self, i2c_addr: int, value: int, force: Optional[bool] = None) -> None:
        self._write(i2c_addr, bytes([value]))

    def read_byte_data(self, i2c_addr: int, register: int, force: Optional[bool] = None) -> int:
        return self.read_i2c_block_data(i2c_addr, register, 1)[0]

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: Optional[bool] = None
    ) -> None:
        self._write(i2c_addr, bytes([register, value]))

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: Optional[bool] = None
    ) -> list[int]:
        # A repeated-start transaction: the pointer write and the read are one bus operation.
        with self._lock:
            self.log.append(Transfer(i2c_addr, "write", bytes([register])))
            chip = self._chip(i2c_addr)
            chip.write(bytes([register]))
            data = chip.read(length)
            self.log.append(Transfer(i2c_addr, "read", data))
        return list(data)

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: Sequence[int], force: Optional[bool] = None
    ) -> None:
        self._write(i2c_addr, bytes([register, *data]))

    def i2c_rdwr(self, *messages: Any) -> None:
        """smbus2.i2c_msg transfers: a write message carries bytes, a read message is filled."""
        with self._lock:
            for msg in messages:
                chip = self._chip(msg.addr)
                if msg.flags & 0x0001:  # I2C_M_RD
                    data = chip.read(msg.len)
                    for i, value in enumerate(data):
                        msg.buf[i] = bytes([value])
                    self.log.append(Transfer(msg.addr, "read", data))
                else:
                    data = bytes(msg)
                    self.log.append(Transfer(msg.addr, "write", data))
                    chip.write(data)

    def close(self) -> None:
        """Nothing to release; present because smbus2.SMBus has it."""

    def __enter__(self) -> SimBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
