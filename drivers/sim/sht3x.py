"""A simulated Sensirion SHT3x-DIS that answers at command level.

From the SHT3x-DIS datasheet (v6, February 2019) and the "SHT3x Electronic Identification Code"
application note (v3): single-shot measurements without clock stretching, periodic and ART
modes with fetch and break, soft reset, heater, status register (power-on value 0x8010: alert
pending and reset detected) and serial number. Execution times are the datasheet maxima; until
one has passed the chip NACKs everything, and a read with no result pending NACKs too.

Not modelled: clock-stretching commands (0x2Cxx, 0x3780) - a SimBus read cannot be held until
the result is ready - alert limits and the ALERT pin, nRESET and the power-up time tPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from drivers.sim.bus import nack
from drivers.sim.environment import Environment
from drivers.sim.sensirion import SensirionChip

# Single shot, no clock stretching (table 9) -> maximum duration in s (table 4, VDD < 2.4 V).
SINGLE_SHOT = {0x2400: 0.0155, 0x240B: 0.0065, 0x2416: 0.0045}
# Periodic mode (table 10) -> (measurements per second, duration of each measurement in s).
PERIODIC = {
    0x2032: (0.5, 0.0155), 0x2024: (0.5, 0.0065), 0x202F: (0.5, 0.0045),
    0x2130: (1.0, 0.0155), 0x2126: (1.0, 0.0065), 0x212D: (1.0, 0.0045),
    0x2236: (2.0, 0.0155), 0x2220: (2.0, 0.0065), 0x222B: (2.0, 0.0045),
    0x2334: (4.0, 0.0155), 0x2322: (4.0, 0.0065), 0x2329: (4.0, 0.0045),
    0x2737: (10.0, 0.0155), 0x2721: (10.0, 0.0065), 0x272A: (10.0, 0.0045),
    0x2B32: (4.0, 0.0155),  # ART: 4 Hz (table 12); its conversion time is not given
}  # fmt: skip
FETCH_DATA = 0xE000
BREAK = 0x3093
SOFT_RESET = 0x30A2
HEATER_ENABLE = 0x306D
HEATER_DISABLE = 0x3066
READ_STATUS = 0xF32D
CLEAR_STATUS = 0x3041
READ_SERIAL = 0x3682

BREAK_S = 0.001  # "this takes 1 ms" (4.8)
SOFT_RESET_S = 0.0015  # tSR maximum (table 4)
IDLE_S = 0.001  # tIDLE before the chip acknowledges the next header

ALERT_PENDING = 1 << 15
HEATER_ON = 1 << 13
RH_ALERT = 1 << 11
T_ALERT = 1 << 10
RESET_DETECTED = 1 << 4
COMMAND_FAILED = 1 << 1
POWER_ON_STATUS = ALERT_PENDING | RESET_DETECTED  # table 18 defaults
CLEARABLE = ALERT_PENDING | RH_ALERT | T_ALERT | RESET_DETECTED  # table 19


def temperature_ticks(celsius: float) -> int:
    """Datasheet 4.13 solved for S_T: (T + 45) * (2^16 - 1) / 175, held to the 16-bit range
    as the chip's output is (it cannot report below -45 or above 130 °C)."""
    return _ticks((celsius + 45.0) * 65535.0 / 175.0)


def humidity_ticks(percent: float) -> int:
    """Datasheet 4.13 solved for S_RH: RH * (2^16 - 1) / 100."""
    return _ticks(percent * 65535.0 / 100.0)


def _ticks(value: float) -> int:
    return min(0xFFFF, max(0, round(value)))


@dataclass
class _Periodic:
    started: float
    period: float
    duration: float
    fetched: int = -1  # index of the last measurement fetched


class SimSHT3x(SensirionChip):
    command_width = 2

    def __init__(
        self,
        environment: Callable[[], Environment] = Environment,
        serial: Optional[int] = 0x1A2B3C4D,  # None: a part that lacks the serial command
    ) -> None:
        super().__init__()
        self.environment = environment
        self.serial = serial
        self.forced_raw: Optional[tuple[int, int]] = None  # (S_T, S_RH) for decode tests
        self.stuck = False  # fault: measurements never complete (reads NACK forever)
        self.measurements = 0
        self._power_on()

    def _power_on(self) -> None:
        self.status = POWER_ON_STATUS
        self.periodic: Optional[_Periodic] = None
        self._reply = b""

    def reset(self) -> None:
        """A brown-out: periodic mode and heater gone, the reset flag set."""
        self._power_on()
        self._ready_at = 0.0

    def write(self, data: bytes) -> None:
        if len(data) < self.command_width:
            raise nack()  # half a command (e.g. an SHT4x's one-byte command): refused
        super().write(data)

    def execute(self, command: int, args: Sequence[int]) -> Optional[tuple[Sequence[int], float]]:
        if self.periodic is not None and command not in (FETCH_DATA, BREAK):
            raise nack()  # 4.8: in periodic mode only fetch and break are taken
        if command in SINGLE_SHOT:
            return self._measure(SINGLE_SHOT[command])
        if command in PERIODIC:
            mps, duration = PERIODIC[command]
            self.periodic = _Periodic(self.clock(), 1.0 / mps, duration)
            return None
        if command == FETCH_DATA:
            return self._fetch()
        if command == BREAK:
            self.periodic = None
            self.reply([], BREAK_S)
        elif command == SOFT_RESET:
            self._power_on()
            self.reply([], SOFT_RESET_S)
        elif command == HEATER_ENABLE:
            self.status |= HEATER_ON
            self.reply([], IDLE_S)
        elif command == HEATER_DISABLE:
            self.status &= ~HEATER_ON
            self.reply([], IDLE_S)
        elif command == READ_STATUS:
            return [self.status], IDLE_S
        elif command == CLEAR_STATUS:
            self.status &= ~CLEARABLE
            self.reply([], IDLE_S)
        elif command == READ_SERIAL and self.serial is not None:
            return [self.serial >> 16, self.serial & 0xFFFF], IDLE_S
        else:
            self.status |= COMMAND_FAILED
            raise nack()
        self.status &= ~COMMAND_FAILED
        return None

    def _measure(self, duration: float) -> Optional[tuple[Sequence[int], float]]:
        self.measurements += 1
        self.status &= ~COMMAND_FAILED
        if self.stuck:
            self.reply([], duration)  # busy for the measurement time, then nothing to read
            return None
        return list(self._raw()), duration

    def _fetch(self) -> Optional[tuple[Sequence[int], float]]:
        # No data yet, or already fetched: the read header is NACKed (4.6).
        p = self.periodic
        if p is None or self.stuck:
            return None
        done = self.clock() - p.started - p.duration
        index = math.floor(done / p.period) if done >= 0 else -1
        if index <= p.fetched:
            return None
        p.fetched = index
        self.measurements += 1
        return list(self._raw()), 0.0

    def _raw(self) -> tuple[int, int]:
        if self.forced_raw is not None:
            return self.forced_raw
        env = self.environment()
        return temperature_ticks(env.temperature), humidity_ticks(env.humidity)
