"""A simulated Sensirion SCD4x that answers at command level.

Models what the datasheet (SCD4x, v1.3 table 9, and the newer revisions' ranges) says a driver
must live with: idle and periodic modes, with the commands a mode refuses NACKed; a sample every
5 s (30 s in low-power mode) of clock time after the start, read once and then gone; execution
times (no command and no read before they pass); CRC on every word; settings in RAM that a
brown-out (reset()) loses, back to the EEPROM's values.

Physical values are turned into ticks with the datasheet's formulas inverted (written here on
their own, not borrowed from the driver). The chip's temperature sensor runs warm by
`self_heating`; the chip reports that minus its temperature offset, so with both at the default
4 °C the room's temperature comes out. The datasheet says the offset also improves the RH output
but gives no formula, so RH is reported as the room's, whatever the offset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable, Optional

from drivers.sim.bus import nack
from drivers.sim.environment import Environment
from drivers.sim.sensirion import SensirionChip

IDLE, PERIODIC, LOW_POWER = "idle", "periodic", "low-power periodic"

# The datasheet v1.1's get_serial_number example: 273'325'796'834'238.
DATASHEET_SERIAL = (0xF896, 0x9F07, 0x3BBE)
DEFAULT_OFFSET_TICKS = 1498  # 4 °C: Sensirion's example value for the default offset
DEFAULT_PRESSURE_HPA = 1013
NOT_READY, READY = 0x8000, 0x8006  # only the low 11 bits mean anything; the rest is noise

PERIODS = {PERIODIC: 5.0, LOW_POWER: 30.0}
EXEC = 0.001

# command -> (accepted while measuring, execution time in s); datasheet table 9.
COMMANDS: dict[int, tuple[bool, float]] = {
    0x21B1: (False, 0.0),  # start_periodic_measurement
    0x21AC: (False, 0.0),  # start_low_power_periodic_measurement
    0xEC05: (True, EXEC),  # read_measurement
    0x3F86: (True, 0.5),  # stop_periodic_measurement
    0x241D: (False, EXEC),  # set_temperature_offset
    0x2318: (False, EXEC),  # get_temperature_offset
    0x2427: (False, EXEC),  # set_sensor_altitude
    0x2322: (False, EXEC),  # get_sensor_altitude
    0xE000: (True, EXEC),  # set_ambient_pressure (with a word) / get_ambient_pressure
    0xE4B8: (True, EXEC),  # get_data_ready_status
    0x3682: (False, EXEC),  # get_serial_number
    0x3615: (False, 0.8),  # persist_settings
    0x3632: (False, 1.2),  # perform_factory_reset
    0x3639: (False, 10.0),  # perform_self_test
    0x3646: (False, 0.03),  # reinit (20 ms in v1.3, 30 ms in the newer revisions)
}


def _ticks(fraction: float) -> int:
    """A 0..1 fraction of full scale as a 16-bit word, clipped like the chip's converter."""
    return min(0xFFFF, max(0, round(fraction * 0xFFFF)))


class SimSCD4x(SensirionChip):
    def __init__(
        self,
        environment: Callable[[], Environment] = Environment,
        serial: tuple[int, int, int] = DATASHEET_SERIAL,
        self_heating: float = 4.0,
    ) -> None:
        super().__init__()
        self.environment = environment
        self.serial = serial
        self.self_heating = self_heating  # °C the sensor runs above the room
        self.stuck = False  # fault: measuring, but data is never ready
        self.invalid_first_sample = False  # quirk: the first sample after a start has CO2 = 0
        self.forced_raw: Optional[tuple[int, int, int]] = None  # (co2, T, RH) words for tests
        self.persist_count = 0  # EEPROM writes: a driver should leave this at 0
        self._eeprom = (DEFAULT_OFFSET_TICKS, 0)  # (temperature offset ticks, altitude m)
        self._power_on()

    def _power_on(self) -> None:
        self.mode = IDLE
        self.offset_ticks, self.altitude = self._eeprom
        self.ambient_pressure: Optional[int] = None  # hPa; None: compensating from the altitude
        self._started_at = 0.0
        self._samples_read = 0
        self._reply = b""
        self._ready_at = 0.0

    def reset(self) -> None:
        """A brown-out: idle again, with the settings last persisted (the defaults)."""
        self._power_on()

    @property
    def temperature_offset(self) -> float:
        return self.offset_ticks * 175 / 65535

    def write(self, data: bytes) -> None:
        if not data:  # an address-only probe (i2cdetect): acknowledged unless busy
            if self.busy():
                raise nack()
            return
        super().write(data)

    def _samples_made(self) -> int:
        if self.mode == IDLE:
            return 0
        return math.floor((self.clock() - self._started_at) / PERIODS[self.mode] + 1e-9)

    def _data_ready(self) -> bool:
        return not self.stuck and self._samples_made() > self._samples_read

    def execute(self, command: int, args: Sequence[int]) -> Optional[tuple[Sequence[int], float]]:
        spec = COMMANDS.get(command)
        if spec is None:
            raise nack()
        while_measuring, duration = spec
        if self.mode != IDLE and not while_measuring:
            raise nack()  # "not available during periodic measurement"
        if command in (0x21B1, 0x21AC):
            self.mode = PERIODIC if command == 0x21B1 else LOW_POWER
            self._started_at = self.clock()
            self._samples_read = 0
            return None
        if command == 0x3F86:
            self.mode = IDLE
            return [], duration
        if command == 0xEC05:
            if not self._data_ready():
                return None  # nothing buffered: the read header is NACKed
            self._samples_read = self._samples_made()
            return self._sample(first=self._samples_read == 1), duration
        if command == 0xE4B8:
            return [READY if self._data_ready() else NOT_READY], duration
        if command in (0x241D, 0x2427):
            if len(args) != 1:
                raise nack()
            if command == 0x241D:
                self.offset_ticks = args[0]
            else:
                self.altitude = args[0]
                self.ambient_pressure = None  # an altitude overrides a set pressure
            return [], duration
        if command == 0xE000:
            if not args:
                return [self.ambient_pressure or DEFAULT_PRESSURE_HPA], duration
            self.ambient_pressure = args[0]  # the word is Pa / 100
            return [], duration
        if command == 0x2318:
            return [self.offset_ticks], duration
        if command == 0x2322:
            return [self.altitude], duration
        if command == 0x3682:
            return list(self.serial), duration
        if command == 0x3615:
            self.persist_count += 1
            self._eeprom = (self.offset_ticks, self.altitude)
            return [], duration
        if command == 0x3632:
            self._eeprom = (DEFAULT_OFFSET_TICKS, 0)
            return [], duration
        if command == 0x3639:
            return [0], duration  # no malfunction
        # reinit: reload the settings from EEPROM
        self.offset_ticks, self.altitude = self._eeprom
        self.ambient_pressure = None
        return [], duration

    def _sample(self, first: bool) -> list[int]:
        if self.forced_raw is not None:
            co2, t, rh = self.forced_raw
        else:
            env = self.environment()
            reported = env.temperature + self.self_heating - self.temperature_offset
            co2 = min(0xFFFF, max(0, round(env.co2)))
            t = _ticks((reported + 45.0) / 175.0)
            rh = _ticks(env.humidity / 100.0)
        if first and self.invalid_first_sample:
            co2 = 0
        return [co2, t, rh]
