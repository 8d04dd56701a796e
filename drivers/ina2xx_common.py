"""What the TI INA219 and INA226 power monitors share.

Both have 16-bit registers sent most significant byte first, a calibration register that makes
the chip turn its shunt voltage into amperes (current = shunt x cal / k) and watts, and a
triggered "shunt and bus" mode whose end is signalled by a ready flag. The formulas are in the
datasheets' "Programming the Calibration Register" sections (INA219 SBOS448G section 8.5.1,
INA226 SBOS547B section 6.5.1); the chip-specific numbers live in drivers/ina219.py and
drivers/ina226.py.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Optional

from drivers.base import Driver, DriverError, Measurement

REG_CONFIG = 0x00
REG_SHUNT_VOLTAGE = 0x01
REG_BUS_VOLTAGE = 0x02
REG_POWER = 0x03
REG_CURRENT = 0x04
REG_CALIBRATION = 0x05

CONFIG_RESET = 0x8000  # RST: same as a power-on reset, self-clearing
MODE_POWER_DOWN = 0b000
MODE_SHUNT_AND_BUS_TRIGGERED = 0b011

# Both datasheets: "full recovery from power-down requires 40 µs" before a conversion starts.
POWER_DOWN_RECOVERY_S = 40e-6
# Neither datasheet gives a time after RST (registers update 4 µs after a write). ESPHome's
# INA219 set-up waits 1 ms after it, Adafruit's INA260 library 2 ms for a first conversion,
# which this driver does not need: it triggers its own.
RESET_SETTLE_S = 0.001
# After the datasheet's maximum conversion time the ready flag is polled this many more times,
# spread over the same time again: a read never takes longer than twice the worst case.
READY_POLLS = 10

# Current_LSB is rounded up from max_current / 2^15 to one of these steps per decade, as the
# datasheets suggest ("a round number above the minimum"); never more than 2x the minimum,
# well inside the 8x (12-bit resolution) the datasheets allow. 2.5 keeps the INA226's
# 0.8192 A / 0.1 ohm full scale exact (25 µA, cal 2048: current register = shunt register).
CURRENT_LSB_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
_FLOAT_SLACK = 1e-9  # so that 2.5e-5 / 1e-5 and 0.04096 / 1e-5 land on their exact values


def current_lsb_for(max_current: float) -> float:
    """The smallest round Current_LSB in amperes that still reaches max_current in 15 bits."""
    minimum = max_current / 2**15
    decade = 10.0 ** math.floor(math.log10(minimum))
    mantissa = minimum / decade
    step = next(s for s in CURRENT_LSB_STEPS if s >= mantissa * (1 - _FLOAT_SLACK))
    return step * decade


def calibration_for(coefficient: float, current_lsb: float, shunt_ohms: float) -> int:
    """Cal = trunc(coefficient / (Current_LSB x R_shunt)), the datasheets' equation 1."""
    return math.floor(coefficient / (current_lsb * shunt_ohms) * (1 + _FLOAT_SLACK))


def signed16(word: int) -> int:
    return word - 0x10000 if word & 0x8000 else word


def positive_float(cls_name: str, key: str, value: Any) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{cls_name}: {key} must be a positive number, got {value!r}")
    return value


class INA2xx(Driver):
    """One triggered conversion per read(); subclasses say which chip and how it is set."""

    quantities: ClassVar[tuple[str, ...]] = ("voltage", "current", "power")
    # Per chip: the calibration equation's constant, power LSB / current LSB, the largest value
    # the calibration register holds and its step, the largest shunt voltage (V) the chip can
    # measure.
    calibration_coefficient: ClassVar[float]
    power_lsb_factor: ClassVar[int]
    calibration_max: ClassVar[int]
    calibration_step: ClassVar[int] = 1
    shunt_range_max: ClassVar[float]
    shunt_lsb: ClassVar[float]  # V per shunt voltage register count
    # Where the conversion-ready and math-overflow flags are.
    ready_register: ClassVar[int]
    ready_bit: ClassVar[int]
    overflow_bit: ClassVar[int]

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        self.shunt_ohms = positive_float(self.name, "shunt_ohms", self.options["shunt_ohms"])
        max_current = positive_float(self.name, "max_current", self.options["max_current"])
        if max_current * self.shunt_ohms > self.shunt_range_max * (1 + _FLOAT_SLACK):
            raise ValueError(
                f"{self.name}: max_current x shunt_ohms = {max_current * self.shunt_ohms * 1e3:g}"
                f" mV is more than the {self.shunt_range_max * 1e3:g} mV the chip can measure"
            )
        calibration = calibration_for(
            self.calibration_coefficient, current_lsb_for(max_current), self.shunt_ohms
        )
        # Rounded down to what the register can hold (the INA219 has no bit 0): a slightly
        # larger LSB, never an overflow below max_current.
        self.calibration = calibration - calibration % self.calibration_step
        if not 1 <= self.calibration <= self.calibration_max:
            raise ValueError(
                f"{self.name}: shunt_ohms {self.shunt_ohms:g} with max_current {max_current:g}"
                f" needs calibration {calibration}, outside 1..{self.calibration_max}"
            )
        # The LSB the chip really applies, from the truncated register value (not the rounded
        # Current_LSB), so truncation costs no accuracy.
        self.current_lsb = self.calibration_coefficient / (self.calibration * self.shunt_ohms)
        self.power_lsb = self.power_lsb_factor * self.current_lsb
        self._opened = False

    # Chip-specific parts ------------------------------------------------------------------------
    def config_word(self, mode: int) -> int:
        raise NotImplementedError

    @property
    def conversion_wait_s(self) -> float:
        """Worst-case time from the triggering write to results, datasheet maximums."""
        raise NotImplementedError

    @property
    def shunt_full_scale(self) -> int:
        """Shunt register code at the end of the measurable range: reaching it means clipped."""
        raise NotImplementedError

    def bus_volts(self, word: int) -> float:
        raise NotImplementedError

    # Shared -------------------------------------------------------------------------------------
    @classmethod
    def worst_read_time(cls, options: Mapping[str, Any]) -> float:
        # read() gives up after twice the datasheet's worst case; allow that, and bus traffic.
        return max(1.0, 2 * cls(None, **options).conversion_wait_s)

    @classmethod
    def validate_interval(cls, interval: float, options: Mapping[str, Any]) -> None:
        worst = 2 * cls(None, **options).conversion_wait_s
        if worst > interval:
            raise ValueError(
                f"{cls.name}: one reading takes up to {worst:.3g} s with these averaging and "
                f"conversion-time options, longer than the {interval:g} s interval"
            )

    def program(self) -> None:
        """After a reset: calibration, checked, then the ADC powered down until read()."""
        self.write_register(REG_CALIBRATION, self.calibration)
        stored = self.read_register(REG_CALIBRATION)
        if stored != self.calibration:
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: calibration register reads "
                f"0x{stored:04x} after writing 0x{self.calibration:04x}"
            )
        self.write_register(REG_CONFIG, self.config_word(MODE_POWER_DOWN))
        self._opened = True

    def read(self) -> Measurement:
        if not self._opened:
            raise DriverError(f"{self.name}: read() before open()")
        # Writing a triggered mode starts one shunt-then-bus conversion and clears the flag.
        self.write_register(REG_CONFIG, self.config_word(MODE_SHUNT_AND_BUS_TRIGGERED))
        self.sleep(self.conversion_wait_s)
        status = self._wait_ready()
        shunt = signed16(self.read_register(REG_SHUNT_VOLTAGE))
        if self.ready_register == REG_BUS_VOLTAGE:
            bus = status
        else:
            bus = self.read_register(REG_BUS_VOLTAGE)
        current = signed16(self.read_register(REG_CURRENT))
        power = self.read_register(REG_POWER)
        # A power-on reset zeroes the calibration (and with it current and power): checked
        # last, so a reset at any point of this read is caught.
        calibration = self.read_register(REG_CALIBRATION)
        if calibration != self.calibration:
            self._opened = False
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: calibration register reads "
                f"0x{calibration:04x}, not 0x{self.calibration:04x}: the chip was reset"
            )
        if status & self.overflow_bit:
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: math overflow: the current is beyond "
                "the range max_current configures"
            )
        if abs(shunt) >= self.shunt_full_scale:
            limit = self.shunt_full_scale * self.shunt_lsb * 1e3
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: shunt voltage at the end of the ±{limit:g}"
                " mV range: the current is beyond what this shunt and max_current can measure"
            )
        return self.decode(bus, current, power)

    def decode(self, bus_word: int, current_code: int, power_code: int) -> Measurement:
        """Bus voltage register word, signed current register, power register -> V, A, W.

        The power register holds |current| x voltage (it is unsigned on both chips); the sign
        of the current says which way the power flows.
        """
        power = power_code * self.power_lsb
        return Measurement(
            {
                "voltage": self.bus_volts(bus_word),
                "current": current_code * self.current_lsb,
                "power": -power if current_code < 0 else power,
            }
        )

    def close(self) -> None:
        self._opened = False
        with contextlib.suppress(OSError):
            self.write_register(REG_CONFIG, self.config_word(MODE_POWER_DOWN))

    def _wait_ready(self) -> int:
        """The ready register's word once its flag is set; bounded, never a hang."""
        for attempt in range(READY_POLLS + 1):
            word = self.read_register(self.ready_register)
            if word & self.ready_bit:
                return word
            if attempt < READY_POLLS:
                self.sleep(self.conversion_wait_s / READY_POLLS)
        raise DriverError(
            f"{self.name} at 0x{self.address:02x}: conversion never finished (ready flag not set"
            f" within {2 * self.conversion_wait_s * 1e3:.3g} ms)"
        )

    def read_register(self, register: int) -> int:
        return read_word(self.bus, self.address, register)

    def write_register(self, register: int, value: int) -> None:
        self.bus.write_i2c_block_data(self.address, register, [value >> 8, value & 0xFF])


def read_word(bus: Any, address: int, register: int) -> int:
    """One 16-bit register, most significant byte first (both datasheets, 'Serial Interface')."""
    msb, lsb = bus.read_i2c_block_data(address, register, 2)
    return int((msb << 8) | lsb)
