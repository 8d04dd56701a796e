"""ROHM BH1750FVI ambient light sensor (illuminance in lx) over I2C.

Follows the ROHM BH1750FVI datasheet (2011.11, Rev. D): one-byte instructions (p. 5), the
measurement time register MTreg written as 01000_MT[7:5] then 011_MT[4:0] (p. 5, 11), and
lx = count / 1.2 * (69 / MTreg), halved in H-resolution mode 2 (p. 11). Maximum measurement
times are 180 ms (H, H2) and 24 ms (L) at the default MTreg of 69 (p. 2) and scale with MTreg.

Every read() is one one-time measurement: power on, MTreg, a one-time mode command, the maximum
measurement time, two bytes. The chip powers itself down afterwards, so between readings it
draws the power-down current (0.01 uA typ.). The chip has no status flag: a read before the
measurement ends returns the previous result (or 0 after a reset), so the driver always waits
the datasheet's maximum.

The BH1750 has no identity to check and no readable configuration: open() can only see that
something acknowledges at the address, and a brown-out cannot be detected. A brown-out costs
nothing, though, because MTreg is written before every measurement (see read()).

Auto-ranging (option auto_range, default on) uses the datasheet's sensitivity adjustment via
MTreg (p. 11). Three settings, most sensitive first:

    dark    H-resolution mode 2, MTreg 254   0.113 lx/count, full scale  7 418 lx, 663 ms max
    normal  H-resolution mode,   MTreg  69   0.833 lx/count, full scale 54 612 lx, 180 ms max
    bright  H-resolution mode,   MTreg  31   1.855 lx/count, full scale 121 557 lx, 81 ms max

A reading is taken at the current setting; the next one uses the setting chosen from it:
after a count above 75 % of full scale, the next less sensitive setting in which the reading
is below 75 % (or bright); otherwise, if a more sensitive setting's full scale is more than 8
times the reading, the most sensitive such one (8x headroom for light that rises between
readings); otherwise the same. The gap between the two thresholds is the hysteresis:
dark -> normal above 5 563 lx, normal -> dark below 927 lx; normal -> bright above 40 959 lx,
bright -> normal below 6 827 lx. The driver starts at normal.
A saturated count (65535) only says "at least this much": that reading is refused with
DriverError, and the next one is taken at bright (auto) or the message says what to lower.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from drivers.base import Driver, DriverError, Measurement

# Instruction set (datasheet p. 5).
POWER_DOWN = 0x00
POWER_ON = 0x01
RESET = 0x07  # clears the data register; ignored in power-down, hence after POWER_ON
CONTINUOUS_H = 0x10
CONTINUOUS_H2 = 0x11
CONTINUOUS_L = 0x13
ONE_TIME_H = 0x20
ONE_TIME_H2 = 0x21
ONE_TIME_L = 0x23
MTREG_HIGH = 0b01000_000  # | MT[7:5]
MTREG_LOW = 0b011_00000  # | MT[4:0]

MTREG_DEFAULT = 69  # power-on value 0100_0101
MTREG_MIN = 31  # sensitivity x0.45
MTREG_MAX = 254  # sensitivity x3.68
COUNTS_PER_LX = 1.2  # "measurement accuracy", typ. (p. 2): sensor out / actual lx
FULL_SCALE = 0xFFFF
BUS_ALLOWANCE_S = 0.05  # a handful of transfers on a busy 100 kHz bus


@dataclass(frozen=True)
class ModeSpec:
    command: int  # one-time measurement instruction
    divisor: int  # H-resolution mode 2 counts twice per lx
    max_ms: int  # maximum measurement time at MTreg 69


MODES: Mapping[str, ModeSpec] = {
    "high": ModeSpec(ONE_TIME_H, 1, 180),
    "high2": ModeSpec(ONE_TIME_H2, 2, 180),
    "low": ModeSpec(ONE_TIME_L, 1, 24),
}


@dataclass(frozen=True)
class Setting:
    mode: str
    mtreg: int


DARK = Setting("high2", MTREG_MAX)
NORMAL = Setting("high", MTREG_DEFAULT)
BRIGHT = Setting("high", MTREG_MIN)
AUTO_SETTINGS = (DARK, NORMAL, BRIGHT)  # most sensitive first
AUTO_RAISE_FRACTION = 0.75  # of full scale: above it, go less sensitive
AUTO_HEADROOM = 8  # go more sensitive only if the reading is below full scale / 8 there


def illuminance(count: int, setting: Setting) -> float:
    """lx from a measurement result, datasheet p. 11."""
    spec = MODES[setting.mode]
    return count / COUNTS_PER_LX * (MTREG_DEFAULT / setting.mtreg) / spec.divisor


def full_scale_lx(setting: Setting) -> float:
    return illuminance(FULL_SCALE, setting)


def measurement_time_s(setting: Setting) -> float:
    """The maximum measurement time scaled by MTreg, rounded up to a whole millisecond."""
    ms = -(-MODES[setting.mode].max_ms * setting.mtreg // MTREG_DEFAULT)
    return ms / 1000.0


def mtreg_commands(mtreg: int) -> tuple[int, int]:
    return MTREG_HIGH | (mtreg >> 5), MTREG_LOW | (mtreg & 0x1F)


def next_auto_setting(current: Setting, count: int) -> Setting:
    """The setting for the next reading, from this one's count (module docstring)."""
    if count >= FULL_SCALE:
        return AUTO_SETTINGS[-1]
    lx = illuminance(count, current)
    i = AUTO_SETTINGS.index(current)
    if count > AUTO_RAISE_FRACTION * FULL_SCALE:
        for setting in AUTO_SETTINGS[i + 1 :]:
            if lx <= AUTO_RAISE_FRACTION * full_scale_lx(setting):
                return setting
        return AUTO_SETTINGS[-1]
    for setting in AUTO_SETTINGS[:i]:
        if lx < full_scale_lx(setting) / AUTO_HEADROOM:
            return setting
    return current


class BH1750(Driver):
    name: ClassVar[str] = "bh1750"
    label: ClassVar[str] = "ROHM BH1750"
    simulated: ClassVar[str] = "drivers.sim.bh1750:SimBH1750"
    default_address: ClassVar[int] = 0x23  # ADDR low; 0x5C with ADDR high
    addresses: ClassVar[tuple[int, ...]] = (0x23, 0x5C)
    quantities: ClassVar[tuple[str, ...]] = ("illuminance",)
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        "mode": (str, "high"),
        "mtreg": (int, MTREG_DEFAULT),
        "auto_range": (bool, True),
    }
    # identify() stays the base class's: the chip has no id register or serial to read, and
    # every instruction it knows changes its state, so scan-i2c names it by address alone.

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        mode, mtreg, auto = (self.options[k] for k in ("mode", "mtreg", "auto_range"))
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        if isinstance(mtreg, bool) or not isinstance(mtreg, int):
            raise ValueError(f"mtreg must be an integer {MTREG_MIN}..{MTREG_MAX}, got {mtreg!r}")
        if not MTREG_MIN <= mtreg <= MTREG_MAX:
            raise ValueError(
                f"mtreg must be {MTREG_MIN}..{MTREG_MAX} (datasheet p. 11), got {mtreg}"
            )
        if not isinstance(auto, bool):
            raise ValueError(f"auto_range must be true or false, got {auto!r}")
        if auto and ("mode" in kwargs or "mtreg" in kwargs):
            raise ValueError(
                "auto_range chooses mode and mtreg; set auto_range = false to fix them"
            )
        self.setting = NORMAL if auto else Setting(mode, mtreg)
        self._opened = False

    @classmethod
    def worst_read_time(cls, options: Mapping[str, Any]) -> float:
        # One measurement at the slowest setting it may use, plus the bus transfers.
        if options.get("auto_range", True) is True:
            settings: tuple[Setting, ...] = AUTO_SETTINGS
        else:
            settings = (Setting(options.get("mode", "high"), options.get("mtreg", MTREG_DEFAULT)),)
        return max(measurement_time_s(s) for s in settings) + BUS_ALLOWANCE_S

    def open(self) -> None:
        try:
            self.send(bytes([POWER_ON]))
        except OSError as e:
            raise self.no_answer(e) from e
        # Reset clears a stale result; power-down also ends a continuous mode a previous
        # process may have left running. The auto-range setting is kept: it follows the light.
        self.send(bytes([RESET]))
        self.send(bytes([POWER_DOWN]))
        self._opened = True

    def read(self) -> Measurement:
        if not self._opened:
            raise DriverError(f"{self.name}: read() before open()")
        setting = self.setting
        high, low = mtreg_commands(setting.mtreg)
        # MTreg is written before every measurement, not once in open(): a chip that browned
        # out is back at MTreg 69 without saying so, and this way its next reading is still
        # taken (and converted) at the setting the driver assumes.
        for command in (POWER_ON, high, low, MODES[setting.mode].command):
            self.send(bytes([command]))
        self.sleep(measurement_time_s(setting))
        count = int.from_bytes(self.receive(2), "big")
        if self.options["auto_range"]:
            self.setting = next_auto_setting(setting, count)
        if count >= FULL_SCALE:
            hint = (
                f"the next reading uses mode {self.setting.mode}, mtreg {self.setting.mtreg}"
                if self.options["auto_range"]
                else "lower mtreg (down to 31) or enable auto_range"
            )
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: saturated (count 65535, more than "
                f"{full_scale_lx(setting):.0f} lx at mode {setting.mode}, mtreg "
                f"{setting.mtreg}); {hint}"
            )
        return Measurement({"illuminance": illuminance(count, setting)})

    def close(self) -> None:
        # A one-time measurement already ends in power-down; this covers an interrupted one.
        with contextlib.suppress(OSError):
            self.send(bytes([POWER_DOWN]))
        self._opened = False
