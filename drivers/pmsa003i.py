"""Plantower PMSA003I particulate matter sensor (PM1.0, PM2.5, PM10) over I2C.

The sensor measures on its own whenever it is powered (fan and laser run while SET is high) and
keeps its latest result as a 32-byte frame, the same frame Plantower's UART models send. A plain
32-byte read at 0x12 returns that frame from its first byte. Nothing is written and nothing is
configured, so a brown-out cannot leave the chip in a state the driver would need to detect:
open() only checks that a well-formed frame comes back.

Frame layout and check word: Plantower "PMS5003 series data manual" V2.3 (2016-06-01), appendix
(the PMSA003I sends the same frame over I2C); offsets cross-checked against Adafruit's
CircuitPython PM25 library (adafruit_pm25/__init__.py, i2c.py), ESPHome's pmsa003i component
(pmsa003i.cpp) and the PMSA003I register map of avsa242/pmsa003i-spin (version 0x1C, error 0x1D).

Warm-up: the manuals say stable data comes only 30 s after the sensor wakes, because of the fan.
The frame has no flag that says "not yet stable", and open() cannot know how long the sensor has
been powered, so the driver reports what the sensor says; a frame of zeros is a valid reading of
clean air. A sensor powered with the Pi has usually warmed up by the time the agent first polls
it. ESPHome observed that right after power-on the chip NACKs reads until its first
measurement (typically 2.3 s); open() waits out that window (bounded) rather than failing.
A frame equal to the previous one is not a fault either: clean air is steady.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from drivers.base import CRCError, Driver, DriverError, Measurement, Sleep

START_CHARACTERS = b"\x42\x4d"  # "BM", fixed
FRAME_SIZE = 32
# The frame-length word counts what follows it: 13 data words and the check word.
FRAME_LENGTH = 2 * 13 + 2

# Byte offsets in the frame. Every value is a big-endian 16-bit word unless noted.
OFFSET_FRAME_LENGTH = 2
OFFSET_PM_CF1 = 4  # data 1-3: PM1.0, PM2.5, PM10 in µg/m³, "CF=1, standard particle"
OFFSET_PM_ATMOSPHERIC = 10  # data 4-6: PM1.0, PM2.5, PM10 in µg/m³, "atmospheric environment"
OFFSET_COUNTS = 16  # data 7-12: particles per 0.1 L beyond 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm
OFFSET_VERSION = 28  # data 13 high byte: version number (one byte)
OFFSET_ERROR = 29  # data 13 low byte: error code (one byte)
OFFSET_CHECKSUM = 30  # check word = 16-bit sum of bytes 0..29

log = logging.getLogger("roomagent.drivers.pmsa003i")

# Which of the two mass concentration sets to report. The manual's note under the frame table
# says "CF=1 should be used in the factory environment", so the atmospheric set is the one meant
# for ambient air. Most libraries agree: PMserial defaults to it, ESPHome's UART pmsx003 reports
# it as pm_2_5 (CF=1 as pm_2_5_std), enviroplus-mqtt and balenair switched to it. Plantower does
# not say how the two relate; users see them equal at low concentrations and CF=1 higher above
# about 30 µg/m³. "cf1" is for a correction built on it (the US EPA's PurpleAir correction takes
# CF=1 PM2.5), for PurpleAir's advice to use CF=1 indoors, or to match ESPHome's pmsa003i
# component, which defaults to CF=1 (standard_units: true).
CONCENTRATION_SETS = ("atmospheric", "cf1")

# ESPHome: the chip NACKs for typically 2.3 s after a cold power-up; it waits 3 s, so do we.
BOOT_WAIT_S = 3.0
BOOT_POLL_S = 0.25


def frame_checksum(data: bytes) -> int:
    """The check word the sensor sends: the sum of bytes 0..29, kept to 16 bits."""
    return sum(data[:OFFSET_CHECKSUM]) & 0xFFFF


def _words(data: bytes, offset: int, count: int) -> tuple[int, ...]:
    return struct.unpack_from(f">{count}H", data, offset)


@dataclass(frozen=True)
class Frame:
    """One decoded frame. Mass concentrations in µg/m³, counts per 0.1 L of air."""

    pm_cf1: tuple[int, int, int]  # PM1.0, PM2.5, PM10
    pm_atmospheric: tuple[int, int, int]
    counts: tuple[int, int, int, int, int, int]  # > 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm
    version: int
    error: int

    @classmethod
    def parse(cls, data: bytes, source: str = "pmsa003i") -> Frame:
        """Checks start characters, frame length and check word; DriverError (CRCError for
        the check word) names what was read. A non-zero error code is left to the caller."""
        if len(data) != FRAME_SIZE:
            raise DriverError(f"{source}: read {len(data)} bytes, a frame is {FRAME_SIZE}")
        if data[:2] != START_CHARACTERS:
            raise DriverError(
                f"{source}: frame starts 0x{data[0]:02x} 0x{data[1]:02x}, expected 0x42 0x4d "
                f"(read {data[:8].hex(' ')} ...): not a PMSA003I frame"
            )
        (length,) = _words(data, OFFSET_FRAME_LENGTH, 1)
        if length != FRAME_LENGTH:
            raise DriverError(
                f"{source}: frame length word {length}, expected {FRAME_LENGTH} "
                f"(read {data[:8].hex(' ')} ...): not a PMSA003I frame"
            )
        (check,) = _words(data, OFFSET_CHECKSUM, 1)
        if check != frame_checksum(data):
            raise CRCError(
                f"{source}: checksum mismatch: check word 0x{check:04x}, bytes 0..29 sum to "
                f"0x{frame_checksum(data):04x}"
            )
        cf1 = _words(data, OFFSET_PM_CF1, 3)
        atmospheric = _words(data, OFFSET_PM_ATMOSPHERIC, 3)
        n = _words(data, OFFSET_COUNTS, 6)
        return cls(
            pm_cf1=(cf1[0], cf1[1], cf1[2]),
            pm_atmospheric=(atmospheric[0], atmospheric[1], atmospheric[2]),
            counts=(n[0], n[1], n[2], n[3], n[4], n[5]),
            version=data[OFFSET_VERSION],
            error=data[OFFSET_ERROR],
        )


class PMSA003I(Driver):
    name: ClassVar[str] = "pmsa003i"
    label: ClassVar[str] = "Plantower PMSA003I"
    simulated: ClassVar[str] = "drivers.sim.pmsa003i:SimPMSA003I"
    # Its fan needs 4.5-5.5 V (Plantower's manual) beside the 3.3 V logic.
    five_volt: ClassVar[bool] = True
    default_address: ClassVar[int] = 0x12
    addresses: ClassVar[tuple[int, ...]] = (0x12,)  # fixed, not strappable
    quantities: ClassVar[tuple[str, ...]] = ("pm1_0", "pm2_5", "pm10")
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        "concentration": (str, "atmospheric"),
    }

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        if self.options["concentration"] not in CONCENTRATION_SETS:
            raise ValueError(
                f"concentration must be one of {list(CONCENTRATION_SETS)}, "
                f"got {self.options['concentration']!r}"
            )
        self._last_error = 0

    @property
    def _source(self) -> str:
        return f"{self.name} at 0x{self.address:02x}"

    def _read_frame(self) -> Frame:
        # One raw read: the sensor serves the frame from its start, no register pointer needed.
        return Frame.parse(self.receive(FRAME_SIZE), self._source)

    def _check(self, frame: Frame) -> Frame:
        if frame.error and frame.error != self._last_error:
            # Drivers written from the PMSA003/PMSA003I manuals name this byte "error code" (the
            # PMS5003 V2.3 manual still calls it reserved). No codes are published, so a value
            # here is logged once, not treated as a failure: firmware that uses the byte for
            # something else would otherwise make every reading fail.
            log.warning("%s: sensor reports error byte 0x%02x", self._source, frame.error)
        self._last_error = frame.error
        return frame

    def open(self) -> None:
        polls = round(BOOT_WAIT_S / BOOT_POLL_S)
        for attempt in range(polls + 1):
            try:
                self._check(self._read_frame())
                return
            except OSError as e:
                if attempt == polls:
                    raise self.no_answer(e) from e
                self.sleep(BOOT_POLL_S)  # maybe still booting: it NACKs until its first frame

    @classmethod
    def worst_read_time(cls, options: Mapping[str, Any]) -> float:
        return BOOT_WAIT_S + 0.5  # open() waits out the sensor's boot, reads are one transfer

    def read(self) -> Measurement:
        frame = self._check(self._read_frame())
        if not any(frame.pm_cf1 + frame.pm_atmospheric + frame.counts):
            # Every figure zero, particle counts included, is the fan still spinning up after
            # power-on (the manual: stable data 30 s after wake-up); real air, even a clean
            # room's, has particles above 0.3 µm. Answering but nothing to report yet.
            return Measurement({})
        cf1 = self.options["concentration"] == "cf1"
        pm = frame.pm_cf1 if cf1 else frame.pm_atmospheric
        return Measurement({q: float(v) for q, v in zip(self.quantities, pm)})

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        """Reads one frame (a read changes nothing in the sensor). Any well-formed frame
        counts, whatever its error code: the chip is a PMSA003I even when it reports a fault."""
        try:
            frame = Frame.parse(cls(bus, address).receive(FRAME_SIZE))
        except (OSError, DriverError):
            return None
        return f"PMSA003I (frame version 0x{frame.version:02x})"

    def close(self) -> None:
        """Nothing to send: the PMSA003I's I2C side only serves frames. Its standby (fan and
        laser off) is the SET pin pulled low, and the UART models' sleep command has no I2C
        counterpart, so idling it is a GPIO's job, outside this driver."""
