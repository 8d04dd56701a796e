"""A simulated ROHM BH1750FVI that answers at instruction level (datasheet 2011.11, Rev. D).

What it models: the power state (power-down after power-on and after every one-time
measurement), the instruction set of p. 5 (other opcodes NACK), MTreg set by its two
half-instructions, Reset only working when powered on, and the measurement result
count = round(lx * 1.2 * MTreg / 69), twice that in H-resolution mode 2, clipped to 65535.

A measurement takes the datasheet's maximum time (180 ms H/H2, 24 ms L at MTreg 69, scaled by
MTreg), the worst chip a driver must cope with. The BH1750 has no status flag and does not
stretch or NACK a read: until a measurement ends, a read returns whatever the data register
holds, i.e. the previous result, or 0 after power-on or Reset (the register's initial value in
the datasheet). Libraries see the same (claws/BH1750 issue #59: a read right after a mode
change returns the previous mode's value); it is why the driver waits the full time.

The L-resolution mode's coarser step (4 lx) is not modelled: its counts use the same formula.
"""

from __future__ import annotations

from typing import Callable, Optional

from drivers.sim.bus import RecentList, SimChip, nack
from drivers.sim.environment import Environment

# Opcode -> (count multiplier: H-resolution mode 2 counts twice per lx; maximum measurement
# time in ms at MTreg 69; one-time mode, which powers down when done?).
_MEASUREMENTS = {
    0x10: (1, 180, False),
    0x11: (2, 180, False),
    0x13: (1, 24, False),
    0x20: (1, 180, True),
    0x21: (2, 180, True),
    0x23: (1, 24, True),
}
_MTREG_POWER_ON = 0b0100_0101
_TIME_TOLERANCE = 1e-9  # float rounding of the virtual clock, not chip behaviour


class SimBH1750(SimChip):
    def __init__(self, environment: Callable[[], Environment] = Environment) -> None:
        self.environment = environment
        self.forced_count: Optional[int] = None  # a raw measurement result, for tests
        self.commands: RecentList[int] = RecentList()  # accepted instructions, in order
        self.measurements = 0
        self._power_on_reset()

    def _power_on_reset(self) -> None:
        self.powered = False
        self.mtreg = _MTREG_POWER_ON
        self.data = 0
        self._measuring: Optional[tuple[int, bool]] = None  # opcode, one-time
        self._pending = 0
        self._ready_at = 0.0

    def reset(self) -> None:
        """A brown-out: power-down, MTreg 69, data register 0."""
        self._power_on_reset()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if len(data) != 1:
            raise nack()  # every instruction is one byte
        self._settle()
        op = data[0]
        if op == 0x00:
            self.powered = False
            self._measuring = None
        elif op == 0x01:
            self.powered = True
        elif op == 0x07:
            if self.powered:  # "not acceptable in power down mode"
                self.data = 0
        elif op >> 3 == 0b01000:
            self.mtreg = (self.mtreg & 0x1F) | ((op & 0x07) << 5)
        elif op >> 5 == 0b011:
            self.mtreg = (self.mtreg & 0xE0) | (op & 0x1F)
        elif op in _MEASUREMENTS:
            self.powered = True
            self._start(op)
        else:
            raise nack()
        self.commands.append(op)

    def _start(self, op: int) -> None:
        multiplier, max_ms, one_time = _MEASUREMENTS[op]
        self._measuring = (op, one_time)
        self._pending = self._count(multiplier)
        self._ready_at = self.clock() + max_ms / 1000.0 * self.mtreg / _MTREG_POWER_ON

    def _count(self, multiplier: int) -> int:
        self.measurements += 1
        if self.forced_count is not None:
            return self.forced_count
        lx = max(0.0, self.environment().illuminance)
        return min(0xFFFF, round(lx * 1.2 * self.mtreg / _MTREG_POWER_ON * multiplier))

    def _settle(self) -> None:
        """Brings the data register up to date with the clock."""
        if self._measuring is None or self.clock() < self._ready_at - _TIME_TOLERANCE:
            return
        op, one_time = self._measuring
        self.data = self._pending
        if one_time:
            self._measuring = None
            self.powered = False
        else:
            self._start(op)

    def read(self, length: int) -> bytes:
        self._settle()
        return (self.data.to_bytes(2, "big") + b"\xff" * length)[:length]
