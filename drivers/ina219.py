"""TI INA219 current/power monitor: bus voltage, current and power of one metered circuit.

Follows the INA219 datasheet (SBOS448G, December 2015): register map and power-on values
(table 2), configuration bits (section 8.6.2.1: PG and ADC settings tables, conversion times;
maximums from the electrical characteristics, 586 µs per 12-bit conversion), the calibration
equations of section 8.5.1 (Cal = trunc(0.04096 / (Current_LSB x R_shunt)), Power_LSB =
20 x Current_LSB), and the bus voltage register's CNVR/OVF flags (section 8.6.3.2). Calibration
values were checked against Adafruit_INA219 (0.1 ohm, 3.2 A: Current_LSB 100 µA, Cal 4096) and
chrisb2/pi_ina219 (which also rounds Current_LSB up to a round value).

Each read() triggers one "shunt and bus" conversion, so voltage, current and power come from the
same conversion and the chip sits powered down in between. There is no id register: open()
resets the chip and checks that the configuration register comes back at 0x399F.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Optional

from drivers.base import DriverError, Sleep
from drivers.ina2xx_common import (
    CONFIG_RESET,
    POWER_DOWN_RECOVERY_S,
    REG_BUS_VOLTAGE,
    REG_CONFIG,
    RESET_SETTLE_S,
    INA2xx,
    read_word,
)

CONFIG_POR = 0x399F  # 32 V range, PGA /8, 12-bit bus and shunt, continuous shunt and bus
CONFIG_POR_INA226 = 0x4127  # what an INA226/INA230/INA231 reads after the same reset

CONFIG_BRNG_32V = 1 << 13
CONFIG_PG_SHIFT = 11
CONFIG_BADC_SHIFT = 7
CONFIG_SADC_SHIFT = 3

# Conversion ready: set when conversions, averaging and maths are done. The datasheet says
# reading the power register clears it; TI's forum (E2E 647053) reports reading the bus register
# does. The driver needs neither: each triggering config write clears it.
BUS_CNVR = 0x0002
BUS_OVF = 0x0001  # math overflow: current or power out of range, their registers meaningless
BUS_VOLTAGE_SHIFT = 3  # BD12..BD0 sit in bits 15..3
BUS_VOLTAGE_LSB = 0.004  # V
SHUNT_VOLTAGE_LSB = 10e-6  # V, whatever the PGA setting
CALIBRATION_COEFFICIENT = 0.04096
POWER_LSB_FACTOR = 20
CALIBRATION_MAX = 0xFFFE  # FS0 (bit 0) is void: always reads 0 and cannot be written

# PGA code -> full-scale shunt voltage (PG bit settings). The driver takes the smallest range
# that holds max_current x shunt_ohms: the most resolution that does not clip.
PGA_RANGES = {0b00: 0.040, 0b01: 0.080, 0b10: 0.160, 0b11: 0.320}

# Samples averaged -> BADC/SADC code (ADC settings); 1 sample is plain 12-bit (0b0011, the default).
AVERAGING_CODES = {
    1: 0b0011, 2: 0b1001, 4: 0b1010, 8: 0b1011, 16: 0b1100, 32: 0b1101, 64: 0b1110, 128: 0b1111,
}  # fmt: skip
CONVERSION_MAX_S = 586e-6  # one 12-bit conversion (typical 532 µs); averaging multiplies it

BUS_RANGES = {16: 0, 32: CONFIG_BRNG_32V}


class INA219(INA2xx):
    name: ClassVar[str] = "ina219"
    label: ClassVar[str] = "TI INA219"
    simulated: ClassVar[str] = "drivers.sim.ina219:SimINA219"
    board_options: ClassVar[tuple[str, ...]] = ("shunt_ohms",)
    default_address: ClassVar[int] = 0x40
    # A0 and A1 each strap to GND, VS, SDA or SCL (datasheet, 'Serial Bus Address').
    addresses: ClassVar[tuple[int, ...]] = tuple(range(0x40, 0x50))
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        "shunt_ohms": (float, 0.1),  # the usual breakout's R100
        "max_current": (float, 3.2),  # 320 mV across 0.1 ohm: the chip's widest range
        "bus_voltage_range": (int, 32),  # V full scale: 16 or 32
        "averaging": (int, 1),  # 12-bit samples averaged per reading: 1, 2, 4 ... 128
    }
    calibration_coefficient: ClassVar[float] = CALIBRATION_COEFFICIENT
    power_lsb_factor: ClassVar[int] = POWER_LSB_FACTOR
    calibration_max: ClassVar[int] = CALIBRATION_MAX
    calibration_step: ClassVar[int] = 2  # FS0 is void
    shunt_range_max: ClassVar[float] = PGA_RANGES[0b11]
    shunt_lsb: ClassVar[float] = SHUNT_VOLTAGE_LSB
    ready_register: ClassVar[int] = REG_BUS_VOLTAGE
    ready_bit: ClassVar[int] = BUS_CNVR
    overflow_bit: ClassVar[int] = BUS_OVF

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        if self.options["bus_voltage_range"] not in BUS_RANGES:
            raise ValueError(f"ina219: bus_voltage_range must be one of {sorted(BUS_RANGES)}")
        if self.options["averaging"] not in AVERAGING_CODES:
            raise ValueError(f"ina219: averaging must be one of {sorted(AVERAGING_CODES)}")
        needed = float(self.options["max_current"]) * self.shunt_ohms
        self.pga = min(code for code, volts in PGA_RANGES.items() if volts >= needed * (1 - 1e-9))

    def config_word(self, mode: int) -> int:
        adc = AVERAGING_CODES[self.options["averaging"]]
        return (
            BUS_RANGES[self.options["bus_voltage_range"]]
            | self.pga << CONFIG_PG_SHIFT
            | adc << CONFIG_BADC_SHIFT
            | adc << CONFIG_SADC_SHIFT
            | mode
        )

    @property
    def conversion_wait_s(self) -> float:
        # The shunt conversion(s), then the bus conversion(s), after leaving power-down.
        samples = self.options["averaging"]
        return POWER_DOWN_RECOVERY_S + 2 * samples * CONVERSION_MAX_S

    @property
    def shunt_full_scale(self) -> int:
        return round(PGA_RANGES[self.pga] / SHUNT_VOLTAGE_LSB)

    def bus_volts(self, word: int) -> float:
        return (word >> BUS_VOLTAGE_SHIFT) * BUS_VOLTAGE_LSB

    def open(self) -> None:
        try:
            # A reset first: whatever a previous process left running, the chip starts clean.
            self.write_register(REG_CONFIG, CONFIG_RESET)
        except OSError as e:
            raise self.no_answer(e) from e
        self.sleep(RESET_SETTLE_S)
        config = self.read_register(REG_CONFIG)
        if config != CONFIG_POR:
            hint = " (an INA226's power-on value: use driver 'ina226')"
            raise DriverError(
                f"ina219 at 0x{self.address:02x}: configuration reads 0x{config:04x} after a "
                f"reset, expected 0x{CONFIG_POR:04x}: not an INA219"
                + (hint if config == CONFIG_POR_INA226 else "")
            )
        self.program()

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        """Only a guess: the INA219 has no id register, so a configuration register holding
        its power-on value 0x399F is all there is (an INA220, or an INA219 set up by Adafruit's
        default calibration, reads the same). One register read, nothing written."""
        try:
            config = read_word(bus, address, REG_CONFIG)
        except OSError:
            return None
        return "INA219?" if config == CONFIG_POR else None
