"""Sensirion SHT3x-DIS (SHT30, SHT31, SHT35) temperature and humidity over I2C.

Follows the SHT3x-DIS datasheet (v6, February 2019; sections 4.3-4.13) and Sensirion's
embedded-i2c-sht3x reference driver (sht3x_i2c.c, model 2.0.0); the serial number command comes
from Sensirion's application note "SHT3x Electronic Identification Code" (v3, January 2023), as
the datasheet itself does not list it.

Single-shot measurements without clock stretching: the Raspberry Pi's I2C controller mishandles
clock stretching, and without it the chip simply NACKs the read header until its result is ready.
The chip keeps no configuration a reset could lose in this mode, but its status register flags
every reset, so read() reports one and the runtime re-opens the chip into a known state.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Optional

from drivers.base import DriverError, Measurement, Sleep
from drivers.sensirion import SensirionDriver

# Single shot, clock stretching disabled (datasheet table 9). 0x24 is also an SHT4x heater
# command, so open() makes sure an SHT3x answers before any of these is ever sent.
MEASURE_COMMANDS = {"high": 0x2400, "medium": 0x240B, "low": 0x2416}
# Maximum measurement durations, datasheet table 4 for VDD 2.15-2.4 V (15 / 6 / 4 ms above 2.4 V):
# the larger figures, as the driver cannot know the supply.
MEASURE_TIME_S = {"high": 0.0155, "medium": 0.0065, "low": 0.0045}

CMD_BREAK = 0x3093  # stops periodic data acquisition (4.8)
CMD_SOFT_RESET = 0x30A2  # heater off, alert limits and status back to power-on values (4.9)
CMD_READ_STATUS = 0xF32D  # (4.11, table 17)
CMD_CLEAR_STATUS = 0x3041  # clears bits 15, 11, 10 and 4 (table 19)
CMD_READ_SERIAL = 0x3682  # clock stretching disabled (identification code note, table 1)

# The break command "takes 1 ms" (4.8); tSR, soft reset time, is 1.5 ms at most (table 4); after
# any other command the chip needs tIDLE = 1 ms before it acknowledges a read header or takes
# the next command (table 9 note; identification code note).
# Sensirion's reference driver (embedded-i2c-sht3x) waits longer than these minimums before
# reading the status (10 ms) and after a soft reset (2 ms); a real part that is a little slow
# would otherwise be reported as missing, so its waits are the ones used.
BREAK_TIME_S = 0.001
SOFT_RESET_TIME_S = 0.002
COMMAND_TIME_S = 0.001
STATUS_TIME_S = 0.010

STATUS_HEATER_ON = 1 << 13
STATUS_RESET_DETECTED = 1 << 4  # hard reset, soft reset or supply failure since the last clear
# Reserved bits 14, 12, 3 and 2 read 0 (table 18): a CRC-valid word with any of them set is not
# an SHT3x status.
STATUS_RESERVED_ZERO = (1 << 14) | (1 << 12) | (1 << 3) | (1 << 2)


def temperature_celsius(raw: int) -> float:
    """Datasheet 4.13: T = -45 + 175 * S_T / (2^16 - 1)."""
    return -45.0 + 175.0 * raw / 65535.0


def humidity_percent(raw: int) -> float:
    """Datasheet 4.13: RH = 100 * S_RH / (2^16 - 1); 0..100 by construction."""
    return 100.0 * raw / 65535.0


class SHT3x(SensirionDriver):
    name: ClassVar[str] = "sht3x"
    label: ClassVar[str] = "Sensirion SHT3x"
    simulated: ClassVar[str] = "drivers.sim.sht3x:SimSHT3x"
    # An SHT4x at the same addresses refuses this chip's commands: it gets named.
    names_other_chips: ClassVar[bool] = True
    default_address: ClassVar[int] = 0x44
    addresses: ClassVar[tuple[int, ...]] = (0x44, 0x45)  # ADDR pin low / high
    quantities: ClassVar[tuple[str, ...]] = ("temperature", "humidity")
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {"repeatability": (str, "high")}
    command_width = 2

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        if self.options["repeatability"] not in MEASURE_COMMANDS:
            raise ValueError(
                f"repeatability must be one of {sorted(MEASURE_COMMANDS)}, "
                f"got {self.options['repeatability']!r}"
            )
        self.opened = False

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        # Status and serial number are read-only commands: a running agent's status flags and
        # mode are left as they were. A chip in periodic mode takes neither (it must be stopped
        # first, which would disturb its owner), so it stays unidentified.
        return cls(bus, address, sleep=sleep).describe()

    def describe(self) -> Optional[str]:
        """'SHT3x serial 0x...' (or 'status 0x...' for parts without the serial command), or
        None when no SHT3x answers here."""
        try:
            status = self.read_status()
        except (OSError, DriverError):
            return None
        if status & STATUS_RESERVED_ZERO:
            return None
        try:
            high, low = self.query(CMD_READ_SERIAL, 2, COMMAND_TIME_S)
        except (OSError, DriverError):
            return f"SHT3x status 0x{status:04x}"
        return f"SHT3x serial 0x{(high << 16) | low:08x}"

    def read_status(self) -> int:
        return self.query(CMD_READ_STATUS, 1, STATUS_TIME_S)[0]

    def open(self) -> None:
        self.opened = False
        try:
            # Another program may have left the chip measuring periodically; in that mode it
            # takes no command but fetch and break (4.8). Break then soft reset is also how
            # Sensirion's own example (embedded-i2c-sht3x) starts on a chip in unknown state.
            # An idle chip may refuse the break (the datasheet describes it for periodic mode
            # only); Sensirion's examples ignore its result, and so does this.
            with contextlib.suppress(OSError):
                self.command(CMD_BREAK)
                self.sleep(BREAK_TIME_S)
            self.command(CMD_SOFT_RESET)
            self.sleep(SOFT_RESET_TIME_S)
            self.command(CMD_CLEAR_STATUS)
            self.sleep(COMMAND_TIME_S)
            status = self.read_status()
        except OSError as e:
            raise self.no_answer(e) from e
        if status & STATUS_RESERVED_ZERO:
            raise DriverError(
                f"{self.where}: status 0x{status:04x} has reserved bits set: not an SHT3x"
            )
        if status & STATUS_RESET_DETECTED:
            raise DriverError(f"{self.where}: status 0x{status:04x}: the reset flag did not clear")
        if status & STATUS_HEATER_ON:
            raise DriverError(f"{self.where}: heater still on after a soft reset")
        self.opened = True

    def read(self) -> Measurement:
        if not self.opened:
            raise DriverError(f"{self.where}: read() before open()")
        # One status read per measurement is the only way the chip tells of a reset (brown-out,
        # nRESET, general call) or of a heater someone switched on, which would bias T and RH.
        status = self.read_status()
        if status & STATUS_RESET_DETECTED:
            raise DriverError(
                f"{self.where}: the chip reset since open() (status 0x{status:04x}); re-open it"
            )
        if status & STATUS_HEATER_ON:
            raise DriverError(f"{self.where}: heater switched on (status 0x{status:04x})")
        repeatability = self.options["repeatability"]
        self.command(MEASURE_COMMANDS[repeatability])
        self.sleep(MEASURE_TIME_S[repeatability])
        raw_t, raw_rh = self.read_result(2, MEASURE_TIME_S[repeatability])
        return Measurement(
            {"temperature": temperature_celsius(raw_t), "humidity": humidity_percent(raw_rh)}
        )

    def close(self) -> None:
        """Nothing to send: in single-shot mode the chip sleeps by itself between measurements
        (datasheet 4.1), and open() never starts periodic mode."""
