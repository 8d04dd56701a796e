"""A simulated Sensirion SHT4x that answers at command level.

From the SHT4x datasheet (v6.x): one-byte commands, measurements at three precisions, six heater
commands (a heater pulse ending in a high-precision measurement), serial number and soft reset.
The chip has no configuration and no status register. Execution times are the datasheet maxima;
until one has passed the chip NACKs everything, and a read with no result pending NACKs too.

Not modelled: the heater's warming of the sensor (a heated measurement reports the room), the
general call reset and the power-up time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional

from drivers.sim.bus import nack
from drivers.sim.environment import Environment
from drivers.sim.sensirion import SensirionChip

# Measure T & RH -> maximum duration in s (table 4).
MEASURE = {0xFD: 0.0083, 0xF6: 0.0045, 0xE0: 0.0016}
# Heater at 200 / 110 / 20 mW for 1 s or 0.1 s (the datasheet allows 10 % more), then a
# high-precision measurement.
HEATER = {
    0x39: 1.1 + 0.0083, 0x32: 0.11 + 0.0083,
    0x2F: 1.1 + 0.0083, 0x24: 0.11 + 0.0083,
    0x1E: 1.1 + 0.0083, 0x15: 0.11 + 0.0083,
}  # fmt: skip
READ_SERIAL = 0x89
SOFT_RESET = 0x94
SERIAL_S = 0.001  # the datasheet gives none; answers as soon as the fastest driver reads
SOFT_RESET_S = 0.001  # tSR maximum (table 4)


def temperature_ticks(celsius: float) -> int:
    """Datasheet 4.6 solved for S_T: (T + 45) * (2^16 - 1) / 175, held to the 16-bit range
    as the chip's output is (it cannot report below -45 or above 130 °C)."""
    return _ticks((celsius + 45.0) * 65535.0 / 175.0)


def humidity_ticks(percent: float) -> int:
    """Datasheet 4.6 solved for S_RH: (RH + 6) * (2^16 - 1) / 125, held to the 16-bit range
    (-6..119 %RH); the chip itself does not crop to 0..100, the reader does."""
    return _ticks((percent + 6.0) * 65535.0 / 125.0)


def _ticks(value: float) -> int:
    return min(0xFFFF, max(0, round(value)))


class SimSHT4x(SensirionChip):
    command_width = 1

    def __init__(
        self,
        environment: Callable[[], Environment] = Environment,
        serial: int = 0x0C4F_2E81,
    ) -> None:
        super().__init__()
        self.environment = environment
        self.serial = serial
        self.forced_raw: Optional[tuple[int, int]] = None  # (S_T, S_RH) for decode tests
        self.stuck = False  # fault: measurements never complete (reads NACK forever)
        self.measurements = 0

    def reset(self) -> None:
        """A brown-out: any pending result is lost; there is nothing else to lose."""
        self._reply = b""
        self._ready_at = 0.0

    def execute(self, command: int, args: Sequence[int]) -> Optional[tuple[Sequence[int], float]]:
        # Bytes after a one-byte command are ignored, as the base class does: so an SHT3x
        # command 0x24xx would start a heater pulse here, exactly the hazard on real parts.
        if command in MEASURE:
            return self._measure(MEASURE[command])
        if command in HEATER:
            return self._measure(HEATER[command])
        if command == READ_SERIAL:
            return [self.serial >> 16, self.serial & 0xFFFF], SERIAL_S
        if command == SOFT_RESET:
            self.reply([], SOFT_RESET_S)
            return None
        raise nack()  # not a command of this chip (e.g. the first byte of an SHT3x command)

    def _measure(self, duration: float) -> Optional[tuple[Sequence[int], float]]:
        self.measurements += 1
        if self.stuck:
            self.reply([], duration)  # busy for the measurement time, then nothing to read
            return None
        if self.forced_raw is not None:
            return list(self.forced_raw), duration
        env = self.environment()
        return [temperature_ticks(env.temperature), humidity_ticks(env.humidity)], duration
