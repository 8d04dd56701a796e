"""A simulated Vishay VEML7700 that answers at register level.

Registers 00h..07h are 16 bits wide, written as command code, low byte, high byte, and read
after a command-code write (datasheet doc. 84286 rev. 1.7). Power-on values: ALS_CONF 0x0001
(shut down), thresholds, PSM and data 0, ID 0xC481. Command codes above 07h NACK.

Conversions: once ALS_SD is cleared the chip needs 2.5 ms to start (app note 84323) and then
delivers one result per integration time. Until the first result with the current setting
exists, ALS keeps its previous value: the last result before shutdown ("auto-memorization",
datasheet), or 0 after power-on. Any change of gain or integration time restarts the
conversion. Power-saving mode is stored but does not change the timing (the driver turns it off).

Counts come from Environment.illuminance through the app note's resolution table (typed in
below as printed, rev. 17-Jan-2024) and, at gains 1/4 and 1/8, through the app note's
non-linearity: the sensor's linear reading x is the solution of P(x) = lx for the correction
polynomial P, found by bisection (P is increasing and P(x) > x for x > 0). Counts saturate at
65535. WHITE mirrors ALS; the driver does not use it.
"""

from __future__ import annotations

from typing import Callable, Optional

from drivers.sim.bus import SimChip, nack
from drivers.sim.environment import Environment

_ID = 0xC481
_CONF_POWER_ON = 0x0001
_STARTUP_S = 0.0025
_TIME_TOLERANCE = 1e-9  # float rounding of the virtual clock, not chip behaviour

_GAINS = {0b00: 1.0, 0b01: 2.0, 0b10: 0.125, 0b11: 0.25}
_TIMES_MS = {0b1100: 25, 0b1000: 50, 0b0000: 100, 0b0001: 200, 0b0010: 400, 0b0011: 800}
# lx/count, app note table "resolution and maximum detection range": IT -> gain -> resolution
_RESOLUTION = {
    800: {2.0: 0.0042, 1.0: 0.0084, 0.25: 0.0336, 0.125: 0.0672},
    400: {2.0: 0.0084, 1.0: 0.0168, 0.25: 0.0672, 0.125: 0.1344},
    200: {2.0: 0.0168, 1.0: 0.0336, 0.25: 0.1344, 0.125: 0.2688},
    100: {2.0: 0.0336, 1.0: 0.0672, 0.25: 0.2688, 0.125: 0.5376},
    50: {2.0: 0.0672, 1.0: 0.1344, 0.25: 0.5376, 0.125: 1.0752},
    25: {2.0: 0.1344, 1.0: 0.2688, 0.25: 1.0752, 0.125: 2.1504},
}


def _nonlinearity(x: float) -> float:
    return 6.0135e-13 * x**4 - 9.3924e-9 * x**3 + 8.1488e-5 * x**2 + 1.0023 * x


def linear_reading(lx: float) -> float:
    """x with _nonlinearity(x) == lx, to well below a count."""
    lo, hi = 0.0, lx
    for _ in range(100):
        mid = (lo + hi) / 2
        if _nonlinearity(mid) < lx:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


class SimVEML7700(SimChip):
    def __init__(self, environment: Callable[[], Environment] = Environment) -> None:
        self.environment = environment
        self.forced_als: Optional[int] = None  # a raw ALS count, for tests
        self._power_on_reset()

    def _power_on_reset(self) -> None:
        self.registers = {0: _CONF_POWER_ON, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: _ID}
        self.pointer = 0
        self._valid_from = float("inf")  # when the first result with this setting exists

    def reset(self) -> None:
        """A brown-out: every register back to its power-on value, data 0."""
        self._power_on_reset()

    @property
    def gain(self) -> float:
        return _GAINS[(self.registers[0] >> 11) & 0b11]

    @property
    def integration_ms(self) -> int:
        return _TIMES_MS.get((self.registers[0] >> 6) & 0b1111, 100)

    @property
    def shut_down(self) -> bool:
        return bool(self.registers[0] & 1)

    def write(self, data: bytes) -> None:
        if not data:
            return
        if data[0] not in self.registers:
            raise nack()
        self.pointer = data[0]
        if len(data) < 3:
            return  # a pointer write before a read (or a truncated write, which is dropped)
        value = data[1] | (data[2] << 8)
        if self.pointer == 0:
            self._write_conf(value)
        elif self.pointer <= 3:
            self.registers[self.pointer] = value
        # 04h..07h are read-only

    def _write_conf(self, value: int) -> None:
        self._latch()
        old, now = self.registers[0], self.clock()
        self.registers[0] = value
        if value & 1:
            self._valid_from = float("inf")
        elif old & 1:
            self._valid_from = now + _STARTUP_S + self.integration_ms / 1000.0
        elif (old ^ value) & 0x1BC0:  # gain or integration time changed: conversion restarts
            self._valid_from = now + self.integration_ms / 1000.0

    def _latch(self) -> None:
        """Brings ALS and WHITE up to date with the clock."""
        if self.shut_down or self.clock() < self._valid_from - _TIME_TOLERANCE:
            return
        counts = self._counts()
        self.registers[4] = self.registers[5] = counts

    def _counts(self) -> int:
        if self.forced_als is not None:
            return self.forced_als
        lx = max(0.0, self.environment().illuminance)
        gain = self.gain
        x = linear_reading(lx) if gain < 1 else lx
        return min(0xFFFF, round(x / _RESOLUTION[self.integration_ms][gain]))

    def read(self, length: int) -> bytes:
        if self.pointer in (4, 5):
            self._latch()
        value = self.registers[self.pointer]
        return (value.to_bytes(2, "little") + b"\xff" * length)[:length]
