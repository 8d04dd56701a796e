"""A simulated TI INA226 that answers at register level.

Same model as drivers/sim/ina219.py, with the INA226's numbers (SBOS547B): shunt LSB 2.5 µV
clipped to +-81.9175 mV (+-0x7FFF), bus LSB 1.25 mV (15 bits), current = shunt x cal / 2048,
power = |current| x bus / 20000, conversion time = averages x (shunt + bus conversion time,
typical), the conversion-ready (CVRF) and overflow (OVF) flags in Mask/Enable (reading it clears
CVRF), and the manufacturer / die id registers (`die_id` lets a test stand in an INA260).
"""

from __future__ import annotations

from typing import Callable

from drivers.sim.environment import Environment
from drivers.sim.ina219 import (
    BUS,
    CALIBRATION,
    CONFIG,
    CURRENT,
    POWER,
    SHUNT,
    SimINA2xx,
    quantise,
)

MASK_ENABLE, ALERT_LIMIT, MANUFACTURER_ID, DIE_ID = 0x06, 0x07, 0xFE, 0xFF

AVERAGES = (1, 4, 16, 64, 128, 256, 512, 1024)
CONVERSION_TIMES = (140e-6, 204e-6, 332e-6, 588e-6, 1.1e-3, 2.116e-3, 4.156e-3, 8.244e-3)


class SimINA226(SimINA2xx):
    """Register-level INA226 (power-on configuration 0x4127, ids 0x5449 / 0x2260)."""

    valid_registers = frozenset({*range(8), MANUFACTURER_ID, DIE_ID})
    current_divisor = 2048
    power_divisor = 20000

    def __init__(
        self,
        environment: Callable[[], Environment] = Environment,
        shunt_ohms: float = 0.1,
        die_id: int = 0x2260,
    ) -> None:
        self.die_id = die_id
        super().__init__(environment, shunt_ohms)

    def _power_on_reset(self) -> None:
        self._reset_state(0x4127)
        self.mask_enable = 0
        self.alert_limit = 0

    def _conversion_time(self) -> float:
        mode = self._mode()
        averages = AVERAGES[(self.config >> 9) & 0b111]
        bus = CONVERSION_TIMES[(self.config >> 6) & 0b111] if mode & 0b010 else 0.0
        shunt = CONVERSION_TIMES[(self.config >> 3) & 0b111] if mode & 0b001 else 0.0
        return averages * (bus + shunt)

    def _measure(self, env: Environment) -> tuple[int, int]:
        shunt = quantise(env.current * self.shunt_ohms, 2.5e-6, -0x7FFF, 0x7FFF)
        return shunt, quantise(env.voltage, 1.25e-3, 0, 0x7FFF)

    def _store(self, register: int, value: int) -> None:
        if register == CONFIG:
            if value & 0x8000:
                self._power_on_reset()
                return
            self.config = (value & 0x0FFF) | 0x4000  # bits 14..12 always read 100b
            self._start()
        elif register == CALIBRATION:
            self.calibration = value & 0x7FFF  # D15 is not part of the value
        elif register == MASK_ENABLE:
            self.mask_enable = value & 0xFC03  # alert selects, APOL, LEN; the flags are read-only
        elif register == ALERT_LIMIT:
            self.alert_limit = value
        # data and id registers are read-only: writes are acknowledged and ignored

    def _load(self, register: int) -> int:
        if register == MASK_ENABLE:
            word = self.mask_enable | self.ready << 3 | self.overflow << 2
            self.ready = False  # reading Mask/Enable clears CVRF
            return word
        return {
            CONFIG: self.config,
            SHUNT: self.shunt,
            BUS: self.bus,
            POWER: self.power,
            CURRENT: self.current,
            CALIBRATION: self.calibration,
            ALERT_LIMIT: self.alert_limit,
            MANUFACTURER_ID: 0x5449,
            DIE_ID: self.die_id,
        }[register]
