"""Sensirion SCD4x (SCD40, SCD41, SCD43): CO2, temperature and relative humidity over I2C.

Follows the SCD4x datasheet (Sensirion, version 1.3 of September 2022: command table 9 with its
execution times and "during measurement" column, sections 3.5-3.9; examples from version 1.1)
and Sensirion's embedded-i2c-scd4x driver (generated 2025), which carries the newer revisions'
changes: the 2^16 - 1 denominators, the offset word T_offset * 65535 / 175, the valid altitude
(0-3000 m) and pressure (700-1200 hPa) ranges, and data-ready = any of the low 11 bits set.

The chip measures on its own every 5 s (periodic mode) or about every 30 s (low-power periodic
mode); read() waits for the data-ready flag and fetches that sample, so every quantity comes
from the same measurement. Settings live in the chip's RAM and are written on every open();
persist_settings is never sent, because its EEPROM is rated for only 2000 writes and the
runtime re-opens after every failure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Optional

from drivers.base import CRCError, DriverError, Measurement, Sleep
from drivers.sensirion import SensirionDriver

# Commands (datasheet table 9). The comment says in which mode the chip accepts each one.
CMD_START_PERIODIC_MEASUREMENT = 0x21B1  # idle only
CMD_START_LOW_POWER_PERIODIC_MEASUREMENT = 0x21AC  # idle only
CMD_READ_MEASUREMENT = 0xEC05  # both modes; NACKs the read while no new sample is buffered
CMD_STOP_PERIODIC_MEASUREMENT = 0x3F86  # both modes
CMD_SET_TEMPERATURE_OFFSET = 0x241D  # idle only
CMD_GET_TEMPERATURE_OFFSET = 0x2318  # idle only
CMD_SET_SENSOR_ALTITUDE = 0x2427  # idle only
CMD_GET_SENSOR_ALTITUDE = 0x2322  # idle only
CMD_SET_AMBIENT_PRESSURE = 0xE000  # both modes: meant for continuous pressure compensation
CMD_GET_DATA_READY_STATUS = 0xE4B8  # both modes
CMD_GET_SERIAL_NUMBER = 0x3682  # idle only
CMD_REINIT = 0x3646  # idle only; not needed: open() writes every setting it relies on
# Copies the RAM settings to EEPROM (2000 write cycles guaranteed). Named so that nobody adds it
# by accident: this driver must never send it.
CMD_PERSIST_SETTINGS = 0x3615

# Execution times, datasheet table 9: wait this long before reading a reply or sending the next
# command; the chip NACKs anything earlier.
EXEC_TIME_S = 0.001  # read_measurement, get/set_*, get_data_ready_status, get_serial_number
STOP_TIME_S = 0.5  # stop_periodic_measurement

DATA_READY_MASK = 0x07FF  # get_data_ready_status: ready when any of the low 11 bits is set

# Signal update intervals (datasheet 3.5.1 and 3.8.1: 5 s, and "approximately 30 s").
PERIOD_S = 5.0
LOW_POWER_PERIOD_S = 30.0
# How long read() waits for a sample: a little over one period, so a late sample still counts
# but a chip that will never have one (it reset to idle, or is stuck) fails in bounded time.
WAIT_FACTOR = 1.2
# Polling rates: Sensirion's example polls data-ready every 100 ms.
POLL_S = 0.1
LOW_POWER_POLL_S = 0.5

# Option ranges. The temperature offset is an unsigned word, so it cannot be negative; Sensirion
# recommends 0-20 °C. Altitude and pressure: the chip's valid input ranges.
OFFSET_RANGE_C = (0.0, 20.0)
ALTITUDE_RANGE_M = (0, 3000)
PRESSURE_RANGE_HPA = (700.0, 1200.0)
PRESSURE_STEP_HPA = 1.0  # the pressure word's resolution: smaller changes are not worth a write


def offset_word(offset_c: float) -> int:
    """set_temperature_offset's word: T_offset * (2^16 - 1) / 175, rounded."""
    return round(offset_c * 65535 / 175)


def standard_pressure_hpa(altitude_m: float) -> float:
    """ICAO standard atmosphere: the pressure the chip assumes for a set altitude."""
    return 1013.25 * (1.0 - 2.25577e-5 * altitude_m) ** 5.25588


def decode_measurement(words: Sequence[int]) -> dict[str, float]:
    """read_measurement's three words in physical units (datasheet 3.5.2)."""
    co2, t, rh = words
    return {
        "co2": float(co2),
        "temperature": -45.0 + 175.0 * t / 65535,
        "humidity": 100.0 * rh / 65535,
    }


class SCD4x(SensirionDriver):
    name: ClassVar[str] = "scd4x"
    label: ClassVar[str] = "Sensirion SCD4x"
    simulated: ClassVar[str] = "drivers.sim.scd4x:SimSCD4x"
    default_address: ClassVar[int] = 0x62
    addresses: ClassVar[tuple[int, ...]] = (0x62,)  # fixed: the SCD4x has no address pin
    quantities: ClassVar[tuple[str, ...]] = ("co2", "temperature", "humidity")
    compensation: ClassVar[tuple[str, ...]] = ("pressure",)
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        # °C subtracted from the reading for self-heating; 4.0 is the chip's default.
        "temperature_offset": (float, 4.0),
        "altitude": (int, 0),  # metres above sea level, for pressure compensation
        # hPa; 0.0 = not set. When set it is used instead of the altitude (and is the fallback
        # when a compensate_from sibling has no fresh pressure).
        "ambient_pressure": (float, 0.0),
        "low_power": (bool, False),  # one sample about every 30 s instead of every 5 s
    }

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        offset = self.options["temperature_offset"]
        lo, hi = OFFSET_RANGE_C
        if not _is_number(offset) or not lo <= offset <= hi:
            raise ValueError(
                f"temperature_offset must be {lo:g}..{hi:g} °C (the chip subtracts it; it "
                f"cannot be negative), got {offset!r}"
            )
        altitude = self.options["altitude"]
        lo_m, hi_m = ALTITUDE_RANGE_M
        if isinstance(altitude, bool) or not isinstance(altitude, int):
            raise ValueError(f"altitude must be whole metres, got {altitude!r}")
        if not lo_m <= altitude <= hi_m:
            raise ValueError(f"altitude must be {lo_m}..{hi_m} m (datasheet), got {altitude}")
        pressure = self.options["ambient_pressure"]
        lo_p, hi_p = PRESSURE_RANGE_HPA
        if not _is_number(pressure) or not (pressure == 0 or lo_p <= pressure <= hi_p):
            raise ValueError(
                f"ambient_pressure must be {lo_p:g}..{hi_p:g} hPa, or 0 for not set "
                f"(the altitude is used then), got {pressure!r}"
            )
        if not isinstance(self.options["low_power"], bool):
            raise ValueError(f"low_power must be true or false, got {self.options['low_power']!r}")
        self.low_power: bool = self.options["low_power"]
        self.serial: Optional[int] = None
        # The ambient pressure (hPa) last sent with set_ambient_pressure, or None while the chip
        # compensates from the altitude set in open().
        self._pressure_sent: Optional[float] = None

    @classmethod
    def validate_interval(cls, interval: float, options: Mapping[str, Any]) -> None:
        low_power = options.get("low_power", False) is True
        period = LOW_POWER_PERIOD_S if low_power else PERIOD_S
        if interval < period:
            mode = "low-power periodic mode" if low_power else "periodic mode"
            raise ValueError(
                f"the SCD4x makes one measurement every {period:g} s in {mode}: an interval of "
                f"{interval:g} s would wait for the chip on every read; use {period:g} s or more"
            )

    @classmethod
    def worst_read_time(cls, options: Mapping[str, Any]) -> float:
        # read() may skip one invalid sample and wait a little over a period for each.
        period = LOW_POWER_PERIOD_S if options.get("low_power", False) is True else PERIOD_S
        return 2 * period * WAIT_FACTOR + STOP_TIME_S

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        # get_serial_number is refused (NACK) while the chip measures, and stopping it to ask
        # would disturb whoever runs it. get_data_ready_status is accepted in every mode and
        # changes nothing: a CRC-valid reply to it says a Sensirion SCD4x is listening.
        probe = cls(bus, address, sleep=sleep)
        try:
            probe.query(CMD_GET_DATA_READY_STATUS, 1, EXEC_TIME_S)
        except (OSError, DriverError):
            return None
        try:
            serial = probe._read_serial()
        except (OSError, DriverError):
            return "SCD4x (measuring; CRC-valid reply)"
        return f"SCD4x serial 0x{serial:012x}"

    def open(self) -> None:
        self.serial = None
        self._pressure_sent = None
        try:
            # A previous process may have left it measuring, and in that mode it refuses every
            # setting. stop is accepted in both modes; nothing is answered for 500 ms after it.
            self.command(CMD_STOP_PERIODIC_MEASUREMENT)
            self.sleep(STOP_TIME_S)
            try:
                serial = self._read_serial()
            except CRCError as e:
                raise CRCError(f"{e}; is the chip at 0x{self.address:02x} an SCD4x?") from e
            self._write(CMD_SET_TEMPERATURE_OFFSET, offset_word(self.options["temperature_offset"]))
            # Setting the altitude also cancels an ambient pressure a previous process set.
            self._write(CMD_SET_SENSOR_ALTITUDE, self.options["altitude"])
            if self.options["ambient_pressure"]:
                self._send_pressure(self.options["ambient_pressure"])
            start = (
                CMD_START_LOW_POWER_PERIODIC_MEASUREMENT
                if self.low_power
                else CMD_START_PERIODIC_MEASUREMENT
            )
            self.command(start)  # no execution time: the first sample comes one period later
        except OSError as e:
            raise self.no_answer(e) from e
        self.serial = serial  # also says open() completed: read() and compensate() may run

    def compensate(self, values: Mapping[str, float]) -> None:
        if self.serial is None:
            return
        lo, hi = PRESSURE_RANGE_HPA
        pressure = values.get("pressure")
        if pressure is not None and lo <= pressure <= hi:
            target: Optional[float] = pressure
        elif self.options["ambient_pressure"]:
            target = self.options["ambient_pressure"]
        else:
            target = None
        if target is None:
            if self._pressure_sent is not None:
                # Back to the altitude. set_sensor_altitude is refused while measuring, so send
                # the pressure the standard atmosphere has there (1013 hPa at 0 m, the chip's
                # default) rather than stopping the chip and losing a sample.
                self._write(
                    CMD_SET_AMBIENT_PRESSURE,
                    round(standard_pressure_hpa(self.options["altitude"])),
                )
                self._pressure_sent = None
            return
        if self._pressure_sent is None or abs(target - self._pressure_sent) >= PRESSURE_STEP_HPA:
            self._send_pressure(target)

    def read(self) -> Measurement:
        if self.serial is None:
            raise DriverError(f"{self.name}: read() before open()")
        # Sensirion's reference example skips a sample with CO2 = 0 ppm as invalid (some firmware
        # reports one first after a start; the single-shot RH/T-only mode reports 0 ppm by
        # design). Skip one and wait for the next; two in a row mean the CO2 path is faulty.
        for _ in range(2):
            self._wait_for_data()
            words = self.query(CMD_READ_MEASUREMENT, 3, EXEC_TIME_S)
            if words[0] != 0:
                return Measurement(decode_measurement(words))
        raise DriverError(
            f"{self.name} at 0x{self.address:02x}: two samples in a row with CO2 = 0 ppm, which "
            "Sensirion marks as invalid; the CO2 sensor is faulty or unpowered (check VDDH)"
        )

    def close(self) -> None:
        try:
            self.command(CMD_STOP_PERIODIC_MEASUREMENT)
            self.sleep(STOP_TIME_S)  # so whatever comes next is not refused
        except OSError:
            pass
        self.serial = None

    def _wait_for_data(self) -> None:
        period, poll = (
            (LOW_POWER_PERIOD_S, LOW_POWER_POLL_S) if self.low_power else (PERIOD_S, POLL_S)
        )
        budget = period * WAIT_FACTOR
        for _ in range(math.ceil(budget / (poll + EXEC_TIME_S))):
            if self.query(CMD_GET_DATA_READY_STATUS, 1, EXEC_TIME_S)[0] & DATA_READY_MASK:
                return
            self.sleep(poll)
        raise DriverError(
            f"{self.name} at 0x{self.address:02x}: no new measurement within {budget:g} s; the "
            "chip may have reset (it then sits idle and never gets ready) or be stuck"
        )

    def _read_serial(self) -> int:
        w0, w1, w2 = self.query(CMD_GET_SERIAL_NUMBER, 3, EXEC_TIME_S)
        return (w0 << 32) | (w1 << 16) | w2

    def _write(self, command: int, word: int) -> None:
        self.command(command, [word])
        self.sleep(EXEC_TIME_S)

    def _send_pressure(self, hpa: float) -> None:
        self._write(CMD_SET_AMBIENT_PRESSURE, round(hpa))  # the word is Pa / 100, i.e. hPa
        self._pressure_sent = hpa


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
