"""A simulated Plantower PMSA003I: every read gets the latest 32-byte frame from its first byte.

What is modelled, and on what authority:
- The frame: start characters "BM", frame length 2*13+2, CF=1 and atmospheric PM1.0/PM2.5/PM10,
  six cumulative particle counts per 0.1 L, version byte, error-code byte, and a check word that
  is the 16-bit sum of bytes 0..29 (Plantower PMS5003 manual V2.3 appendix, as for the PMSA003).
  Packed here with struct, independently of the driver's parser.
- Boot: after power-on the chip NACKs reads until its first measurement, typically 2.3 s
  (observed by ESPHome's pmsa003i component, not in the manual).
- Warm-up: the manual only says data is stable 30 s after wake-up (fan). What the chip sends
  before that is not specified; this model sends zero concentrations and counts with a valid
  check word, the hardest case for a driver because it looks exactly like clean air.
- CF=1 from atmospheric: Plantower publishes no relation. This model uses a simplification of
  what users comparing the two sets report (equal at low concentrations, CF=1 about 1.5 times
  the atmospheric figure in heavy smoke): CF=1 = atm up to 30 µg/m³, then 30 + 1.5 (atm - 30).
- Particle counts: the manual gives no link between mass and counts (it depends on the size
  distribution). The counts here are a rough indoor-like shape scaled by the fine (PM2.5) and
  coarse (PM10 - PM2.5) CF=1 mass, cumulative by construction, of the order seen in captured
  PMS7003 frames (about 11,700 particles > 0.3 µm per 0.1 L at 98 µg/m³ CF=1 PM2.5). Not for
  testing counts against.
- A word cannot exceed 65535: larger values saturate (an assumption; the manual is silent).

Faults, as attributes: `nack` (off the bus), `corrupt_checksum`, `bad_start` (first start
character wrong), `truncate_after` (the chip stops driving the bus after that many bytes, so the
master reads 0xFF from the pull-up), `error_code`, and `reset()` (a power cycle: boot NACKs,
then warm-up zeros). `forced_frame` returns raw bytes verbatim (real captured frames);
`forced_words` sets the 12 data words and lets the chip compute the check word.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Callable, Optional

from drivers.sim.bus import SimChip, nack
from drivers.sim.environment import Environment

BOOT_S = 2.3
WARM_UP_S = 30.0
CF1_KNEE = 30.0  # µg/m³, where the model's CF=1 starts to exceed the atmospheric figure
CF1_SLOPE = 1.5
# Particles per 0.1 L beyond 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm per µg/m³ of fine and coarse mass.
COUNTS_PER_FINE = (120.0, 35.0, 5.0, 0.5, 0.0, 0.0)
COUNTS_PER_COARSE = (20.0, 15.0, 10.0, 5.0, 0.5, 0.2)
VERSION = 0x71  # the version byte of a real PMSA003I frame (Bucknalla/PMSA003I-driver)


def _word(value: float) -> int:
    return min(0xFFFF, max(0, math.floor(value + 0.5)))


def cf1_from_atmospheric(atmospheric: float) -> float:
    if atmospheric <= CF1_KNEE:
        return atmospheric
    return CF1_KNEE + CF1_SLOPE * (atmospheric - CF1_KNEE)


def pack_frame(words: Sequence[int], version: int = VERSION, error: int = 0) -> bytes:
    """A frame with the 12 data words given: CF=1 PM x3, atmospheric PM x3, counts x6."""
    body = b"BM" + struct.pack(">H12HBB", 2 * 13 + 2, *words, version, error)
    return body + struct.pack(">H", sum(body) & 0xFFFF)


class SimPMSA003I(SimChip):
    def __init__(
        self, environment: Callable[[], Environment] = Environment, version: int = VERSION
    ) -> None:
        self.environment = environment
        self.version = version
        self.corrupt_checksum = False
        self.bad_start = False
        self.truncate_after: Optional[int] = None
        self.error_code = 0
        self.forced_frame: Optional[bytes] = None
        self.forced_words: Optional[Sequence[int]] = None
        # Built running: powered long ago, warmed up. reset() starts a power cycle.
        self._powered_at = float("-inf")

    def reset(self) -> None:
        """A power cycle: NACKs for BOOT_S, then zero frames until WARM_UP_S have passed."""
        self._powered_at = self.clock()

    def _uptime(self) -> float:
        return self.clock() - self._powered_at

    def write(self, data: bytes) -> None:
        # Readers that write register pointer 0 before reading (a write-read) are answered
        # from the frame start as usual; the I2C side takes no commands.
        if self._uptime() < BOOT_S or data != b"\x00":
            raise nack()

    def read(self, length: int) -> bytes:
        if self._uptime() < BOOT_S:
            raise nack()
        if self.forced_frame is not None:
            frame = bytearray(self.forced_frame)
        else:
            frame = bytearray(pack_frame(self._words(), self.version, self.error_code))
        if self.corrupt_checksum and len(frame) >= 32:
            frame[31] ^= 0xFF
        if self.bad_start:
            frame[0] = 0x00
        if self.truncate_after is not None:
            frame = frame[: self.truncate_after]
        frame += b"\xff" * max(0, length - len(frame))
        return bytes(frame[:length])

    def _words(self) -> Sequence[int]:
        if self.forced_words is not None:
            return self.forced_words
        if self._uptime() < WARM_UP_S:
            return [0] * 12
        env = self.environment()
        atmospheric = (env.pm1_0, env.pm2_5, env.pm10)
        cf1 = [cf1_from_atmospheric(max(0.0, v)) for v in atmospheric]
        fine, coarse = cf1[1], max(0.0, cf1[2] - cf1[1])
        counts = [f * fine + c * coarse for f, c in zip(COUNTS_PER_FINE, COUNTS_PER_COARSE)]
        return [_word(v) for v in (*cf1, *atmospheric, *counts)]
