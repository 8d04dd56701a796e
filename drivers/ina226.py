"""TI INA226 current/power monitor: bus voltage, current and power of one metered circuit.

Follows the INA226 datasheet (SBOS547B, September 2024; same registers as SBOS547A): register map
and power-on values (table 7-1), configuration bits and the averaging / conversion-time tables
(section 7.1; maximum conversion times from the electrical characteristics, +10 %), the
calibration equations of section 6.5.1 (Cal = trunc(0.00512 / (Current_LSB x R_shunt)),
Power_LSB = 25 x Current_LSB) and their Configure/Measure/Calculate example (2 mOhm, 1 mA/bit,
Cal 0A00h, 10 A, 11.98 V, 119.8 W), the Mask/Enable register's CVRF and OVF flags (reading it
clears CVRF), and the manufacturer (FEh = 5449h, "TI") and die (FFh = 2260h) id registers. The
id layout (die id bits 15..4 = device, 3..0 = revision) is the one Adafruit's INA260 library
checks for its sibling chip.

Each read() triggers one "shunt and bus" conversion (with the configured averaging), so
voltage, current and power come from the same conversion and the chip idles in between.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Optional

from drivers.base import DriverError, Sleep
from drivers.ina2xx_common import (
    CONFIG_RESET,
    POWER_DOWN_RECOVERY_S,
    REG_CONFIG,
    RESET_SETTLE_S,
    INA2xx,
    read_word,
)

REG_MASK_ENABLE = 0x06
REG_ALERT_LIMIT = 0x07  # unused: the Alert pin stays disabled, as after reset
REG_MANUFACTURER_ID = 0xFE
REG_DIE_ID = 0xFF

MANUFACTURER_TI = 0x5449  # "TI" in ASCII
DIE_ID_INA226 = 0x226  # bits 15..4 of the die id; bits 3..0 are the die revision
# Other TI chips with the same id registers that may answer at 0x40..0x4F.
OTHER_DIE_IDS = {0x227: "an INA260 (integrated shunt)"}

CONFIG_POR = 0x4127
CONFIG_RESERVED = 0x4000  # bits 14..12 read back 100b; written as the datasheet's examples do
CONFIG_AVG_SHIFT = 9
CONFIG_VBUSCT_SHIFT = 6
CONFIG_VSHCT_SHIFT = 3

MASK_CVRF = 0x0008  # conversion ready; cleared by reading Mask/Enable or writing the config
MASK_OVF = 0x0004  # math overflow: current or power out of range

SHUNT_VOLTAGE_LSB = 2.5e-6  # V
SHUNT_RANGE_MAX = 0.08192  # V: the ADC's full scale, no PGA on this chip
SHUNT_FULL_SCALE = 0x7FFF  # 81.92 mV; the input range ends at -81.9175 mV (-0x7FFF)
BUS_VOLTAGE_LSB = 0.00125  # V; unsigned, D15 always 0 (full scale 7FFFh = 40.96 V)
CALIBRATION_COEFFICIENT = 0.00512
POWER_LSB_FACTOR = 25
CALIBRATION_MAX = 0x7FFF  # D15 is not part of the calibration value

AVERAGING_CODES = {1: 0, 4: 1, 16: 2, 64: 3, 128: 4, 256: 5, 512: 6, 1024: 7}
# Conversion time setting (µs, typical) -> (register code, maximum in s).
CONVERSION_TIMES = {
    140: (0, 154e-6),
    204: (1, 224e-6),
    332: (2, 365e-6),
    588: (3, 646e-6),
    1100: (4, 1.21e-3),
    2116: (5, 2.328e-3),
    4156: (6, 4.572e-3),
    8244: (7, 9.068e-3),
}


class INA226(INA2xx):
    name: ClassVar[str] = "ina226"
    label: ClassVar[str] = "TI INA226"
    simulated: ClassVar[str] = "drivers.sim.ina226:SimINA226"
    board_options: ClassVar[tuple[str, ...]] = ("shunt_ohms",)
    default_address: ClassVar[int] = 0x40
    # A0 and A1 each strap to GND, VS, SDA or SCL (datasheet, 'Serial Bus Address').
    addresses: ClassVar[tuple[int, ...]] = tuple(range(0x40, 0x50))
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        "shunt_ohms": (float, 0.1),  # the usual breakout's R100
        # 81.92 mV across 0.1 ohm: the most the ADC measures, so the default wastes no range.
        "max_current": (float, 0.8192),
        "averaging": (int, 16),  # samples averaged per reading: 1, 4, 16 ... 1024
        "conversion_time_us": (int, 1100),  # per shunt and per bus sample: 140 ... 8244
    }
    calibration_coefficient: ClassVar[float] = CALIBRATION_COEFFICIENT
    power_lsb_factor: ClassVar[int] = POWER_LSB_FACTOR
    calibration_max: ClassVar[int] = CALIBRATION_MAX
    shunt_range_max: ClassVar[float] = SHUNT_RANGE_MAX
    shunt_lsb: ClassVar[float] = SHUNT_VOLTAGE_LSB
    ready_register: ClassVar[int] = REG_MASK_ENABLE
    ready_bit: ClassVar[int] = MASK_CVRF
    overflow_bit: ClassVar[int] = MASK_OVF

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        if self.options["averaging"] not in AVERAGING_CODES:
            raise ValueError(f"ina226: averaging must be one of {sorted(AVERAGING_CODES)}")
        if self.options["conversion_time_us"] not in CONVERSION_TIMES:
            raise ValueError(
                f"ina226: conversion_time_us must be one of {sorted(CONVERSION_TIMES)}"
            )

    def config_word(self, mode: int) -> int:
        ct = CONVERSION_TIMES[self.options["conversion_time_us"]][0]
        return (
            CONFIG_RESERVED
            | AVERAGING_CODES[self.options["averaging"]] << CONFIG_AVG_SHIFT
            | ct << CONFIG_VBUSCT_SHIFT
            | ct << CONFIG_VSHCT_SHIFT
            | mode
        )

    @property
    def conversion_wait_s(self) -> float:
        # Every averaged sample is one shunt and one bus conversion.
        maximum = CONVERSION_TIMES[self.options["conversion_time_us"]][1]
        return POWER_DOWN_RECOVERY_S + self.options["averaging"] * 2 * maximum

    @property
    def shunt_full_scale(self) -> int:
        return SHUNT_FULL_SCALE

    def bus_volts(self, word: int) -> float:
        return word * BUS_VOLTAGE_LSB

    def open(self) -> None:
        try:
            manufacturer = self.read_register(REG_MANUFACTURER_ID)
        except OSError as e:
            raise self.no_answer(e) from e
        die = self.read_register(REG_DIE_ID)
        if manufacturer != MANUFACTURER_TI or die >> 4 != DIE_ID_INA226:
            other = OTHER_DIE_IDS.get(die >> 4) if manufacturer == MANUFACTURER_TI else None
            raise DriverError(
                f"ina226 at 0x{self.address:02x}: manufacturer id 0x{manufacturer:04x}, die id "
                f"0x{die:04x}; an INA226 reads 0x{MANUFACTURER_TI:04x}, 0x{DIE_ID_INA226:03x}x"
                + (f" (that is {other})" if other else "")
            )
        # A reset first: whatever a previous process left running, the chip starts clean.
        self.write_register(REG_CONFIG, CONFIG_RESET)
        self.sleep(RESET_SETTLE_S)
        config = self.read_register(REG_CONFIG)
        if config != CONFIG_POR:
            raise DriverError(
                f"ina226 at 0x{self.address:02x}: configuration reads 0x{config:04x} after a "
                f"reset, expected 0x{CONFIG_POR:04x}"
            )
        self.program()

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        """Reads the two read-only id registers; touches nothing else."""
        try:
            manufacturer = read_word(bus, address, REG_MANUFACTURER_ID)
            die = read_word(bus, address, REG_DIE_ID)
        except OSError:
            return None
        if manufacturer != MANUFACTURER_TI or die >> 4 != DIE_ID_INA226:
            return None
        return f"INA226 (TI, die 0x{die:04x})"
