"""Sensirion SHT4x (SHT40, SHT41, SHT43, SHT45) temperature and humidity over I2C.

Follows the SHT4x datasheet (v6.x: section 4 "Operation and communication", table 4 system
timing, the command table and section 4.6 conversion) and Sensirion's embedded-i2c-sht4x
reference driver (sht4x_i2c.c, model 2.0.3) with its Python sibling sensirion-i2c-sht (0.2.2),
which gives the serial number's 1 ms read delay the datasheet leaves out.

The chip has one-byte commands, no configuration and no status register: each measurement
command carries its precision, and the heater only runs when a heater command asks for it (this
driver never sends one). So there is nothing a reset could lose, and nothing that would show it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Optional

from drivers.base import DriverError, Measurement, Sleep
from drivers.sensirion import SensirionDriver

# Measure T & RH, by precision (repeatability) (datasheet command table).
MEASURE_COMMANDS = {"high": 0xFD, "medium": 0xF6, "low": 0xE0}
# Maximum measurement durations, datasheet table 4. Should a later revision allow more (a
# third-party crate quotes 1.7 ms for low precision from v7.1), the result retries cover it.
MEASURE_TIME_S = {"high": 0.0083, "medium": 0.0045, "low": 0.0016}

CMD_READ_SERIAL = 0x89
CMD_SOFT_RESET = 0x94
# The datasheet's tSR is 1 ms and it gives no time for the serial number; Sensirion's reference
# driver (embedded-i2c-sht4x) waits 10 ms after both, so a slow part is not reported missing.
SOFT_RESET_TIME_S = 0.010
SERIAL_TIME_S = 0.010


def temperature_celsius(raw: int) -> float:
    """Datasheet 4.6: T = -45 + 175 * S_T / (2^16 - 1)."""
    return -45.0 + 175.0 * raw / 65535.0


def humidity_percent(raw: int) -> float:
    """Datasheet 4.6: RH = -6 + 125 * S_RH / (2^16 - 1), cropped to 0..100 as the datasheet
    recommends: the codes span -6..119 %RH, but values outside 0..100 are not physical."""
    return min(100.0, max(0.0, -6.0 + 125.0 * raw / 65535.0))


class SHT4x(SensirionDriver):
    name: ClassVar[str] = "sht4x"
    label: ClassVar[str] = "Sensirion SHT4x"
    simulated: ClassVar[str] = "drivers.sim.sht4x:SimSHT4x"
    # An SHT3x at the same addresses refuses this chip's commands: it gets named.
    names_other_chips: ClassVar[bool] = True
    default_address: ClassVar[int] = 0x44
    # Fixed per part number: SHT4x-AD1x 0x44, -BD1x 0x45, -CD1x 0x46.
    addresses: ClassVar[tuple[int, ...]] = (0x44, 0x45, 0x46)
    quantities: ClassVar[tuple[str, ...]] = ("temperature", "humidity")
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {"precision": (str, "high")}
    command_width = 1

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        if self.options["precision"] not in MEASURE_COMMANDS:
            raise ValueError(
                f"precision must be one of {sorted(MEASURE_COMMANDS)}, "
                f"got {self.options['precision']!r}"
            )
        self.serial: Optional[int] = None

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        # Reading the serial number changes nothing on the chip.
        return cls(bus, address, sleep=sleep).describe()

    def describe(self) -> Optional[str]:
        """'SHT4x serial 0x...', or None when no SHT4x answers here."""
        try:
            return f"SHT4x serial 0x{self.read_serial():08x}"
        except (OSError, DriverError):
            return None

    def read_serial(self) -> int:
        high, low = self.query(CMD_READ_SERIAL, 2, SERIAL_TIME_S)
        return (high << 16) | low

    def open(self) -> None:
        # Re-opening after a failure is harmless and cheap: the soft reset only ends whatever
        # a previous process or a glitch left half-done, and there is no configuration to
        # restore. The serial number (CRC-checked) proves an SHT4x answers.
        self.serial = None
        try:
            self.command(CMD_SOFT_RESET)
            self.sleep(SOFT_RESET_TIME_S)
            self.serial = self.read_serial()
        except OSError as e:
            raise self.no_answer(e) from e

    def read(self) -> Measurement:
        if self.serial is None:
            raise DriverError(f"{self.where}: read() before open()")
        precision = self.options["precision"]
        self.command(MEASURE_COMMANDS[precision])
        self.sleep(MEASURE_TIME_S[precision])
        raw_t, raw_rh = self.read_result(2, MEASURE_TIME_S[precision])
        return Measurement(
            {"temperature": temperature_celsius(raw_t), "humidity": humidity_percent(raw_rh)}
        )

    def close(self) -> None:
        """Nothing to send: the chip goes idle by itself after each measurement (datasheet 4)."""
