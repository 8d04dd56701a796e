"""Vishay VEML7700 ambient light sensor (illuminance in lx) over I2C.

Follows the VEML7700 datasheet (doc. 84286, rev. 1.7, 29-Nov-2023) and the application note
"Designing the VEML7700 Into an Application" (doc. 84323, rev. 17-Jan-2024): 16-bit registers
sent low byte first; ALS_CONF (00h) holds gain [12:11], integration time [9:6], persistence
[5:4], interrupt enable [1] and shutdown [0], and powers up as 0x0001 (shut down); the ID
register (07h) reads 0xC481 (low byte 0x81, the device id).

lx = count * resolution, where the resolution is 0.0042 lx/count at gain 2 and 800 ms and
doubles with every halving of gain or integration time (the app note's table). Revisions before
2023 printed 0.0036 lx/count (and 120 klx full scale); Vishay's change notice calls that value
wrong, and the current datasheet and app note give 0.0042 (and 140 klx).

Above about 1000 lx the sensor is not linear; the app note corrects it with
lx' = 6.0135e-13 lx^4 - 9.3924e-9 lx^3 + 8.1488e-5 lx^2 + 1.0023 lx. The gains meant for such
light are 1/4 and 1/8 (gains 1 and 2 are for < 100 lx), so the correction is applied at those
two gains over their whole range, as ESPHome's veml7700 component does (the app note's flow
corrects every reading it ends with at gain 1/8). It adds 1 % at 100 lx and less below, and
applied by gain rather than above a lux threshold it keeps the result continuous. Readings at
gains 1 and 2 are taken as linear.

The chip converts continuously (power-saving mode off), one result per integration time, and has
no data-ready flag: a reading is the latest finished conversion. After power-on or a change of
gain or integration time the ALS register keeps its previous value until the first conversion
with the new setting ends; the driver then waits 4 ms (2.5 ms oscillator start-up per the app
note, rounded up as Linux's veml6030 driver does) plus twice the integration time (the app note
asks for at least one; Adafruit found one is not always enough on real parts).

Auto-ranging (option auto_range, default on) is the app note's flow (Adafruit_VEML7700 calls it
"Fig. 24"): start at gain 1/8, 100 ms; while the count is <= 100 raise the gain (1/8, 1/4, 1, 2),
then the integration time (up to 800 ms); if the first count is > 100, shorten the integration
time while the count is > 10000 (down to 25 ms). The flow takes a measurement per step; here
each read() is one measurement, and the flow is run on the counts that reading predicts for
each setting, which picks the setting the flow would end at for that light level. The next
read() switches to it (and waits for it). A saturated count (65535) is refused with
DriverError rather than reported as a lower bound; the next reading is taken less sensitively.

A chip that reset is back in shutdown with ALS_CONF = 0x0001: read() reads ALS_CONF back after
every result and raises DriverError when it is not what the driver wrote, so the runtime
re-opens it. (Vishay's register table marks ALS_CONF write-only; it reads back on real parts,
which the Linux, Adafruit and ESPHome drivers all rely on.)

The two PDFs were not at hand; their figures were taken from the drivers and threads that quote
them: Adafruit_CircuitPython_VEML7700 PR #34 and Adafruit_VEML7700 issue #30 (0.0042, rev. 1.7
and the change notice), the 2024 esp-idf veml7700 driver (the app note's tables), Adafruit's
autoLux() and ESPHome (flow, polynomial), Linux's veml6030.c (bit fields, start-up).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Optional

from drivers.base import Driver, DriverError, Measurement, Sleep

REG_ALS_CONF = 0x00
REG_ALS_WH = 0x01
REG_ALS_WL = 0x02
REG_PSM = 0x03
REG_ALS = 0x04
REG_WHITE = 0x05
REG_ALS_INT = 0x06
REG_ID = 0x07

CONF_SD = 1 << 0  # 1 = shut down
CONF_INT_EN = 1 << 1
CONF_PERS_SHIFT = 4
CONF_IT_SHIFT = 6
CONF_GAIN_SHIFT = 11
# The fields this driver sets; reserved bits (15:13, 10, 3:2) are not compared on read-back.
CONF_FIELDS = (0b11 << CONF_GAIN_SHIFT) | (0b1111 << CONF_IT_SHIFT) | (0b11 << 4) | 0b11
CONF_POWER_ON = 0x0001
PSM_OFF = 0x0000  # PSM_EN = 0: continuous conversions, a new result every integration time
DEVICE_ID = 0x81  # ID register, low byte

GAIN_CODES: Mapping[float, int] = {1.0: 0b00, 2.0: 0b01, 0.125: 0b10, 0.25: 0b11}
IT_CODES: Mapping[int, int] = {
    25: 0b1100, 50: 0b1000, 100: 0b0000, 200: 0b0001, 400: 0b0010, 800: 0b0011,
}  # fmt: skip

RESOLUTION_AT_MAX = 0.0042  # lx/count at gain 2, 800 ms (datasheet rev. 1.7, app note 2024)
GAIN_MAX = 2.0
IT_MAX_MS = 800
FULL_SCALE = 0xFFFF
CORRECTION = (6.0135e-13, -9.3924e-9, 8.1488e-5, 1.0023)  # x^4, x^3, x^2, x (app note)
CORRECTED_GAINS = (0.125, 0.25)

STARTUP_S = 0.004
BUS_ALLOWANCE_S = 0.05  # a handful of transfers on a busy 100 kHz bus
SETTLE_INTEGRATIONS = 2

AUTO_GAINS = (0.125, 0.25, 1.0, 2.0)  # the app note's order: least sensitive first
AUTO_TIMES = (25, 50, 100, 200, 400, 800)
AUTO_START = (0.125, 100)
AUTO_COUNTS_LOW = 100
AUTO_COUNTS_HIGH = 10000

Setting = tuple[float, int]  # (gain, integration time in ms)


def resolution(gain: float, integration_ms: int) -> float:
    """lx per count (app note table 'resolution and maximum detection range')."""
    return RESOLUTION_AT_MAX * (IT_MAX_MS / integration_ms) * (GAIN_MAX / gain)


def correct(lux: float) -> float:
    """The app note's non-linearity correction for high illuminance."""
    a, b, c, d = CORRECTION
    return (((a * lux + b) * lux + c) * lux + d) * lux


def illuminance(count: int, setting: Setting) -> float:
    gain, integration_ms = setting
    lux = count * resolution(gain, integration_ms)
    return correct(lux) if gain in CORRECTED_GAINS else lux


def conf_word(setting: Setting, shutdown: bool = False) -> int:
    """ALS_CONF for a setting: persistence 1, interrupt off."""
    gain, integration_ms = setting
    word = (GAIN_CODES[gain] << CONF_GAIN_SHIFT) | (IT_CODES[integration_ms] << CONF_IT_SHIFT)
    return word | CONF_SD if shutdown else word


def settle_time_s(setting: Setting) -> float:
    return STARTUP_S + SETTLE_INTEGRATIONS * setting[1] / 1000.0


def auto_setting(linear_lux: float) -> Setting:
    """The setting the app note's auto-range flow ends at for this (uncorrected) light level."""
    g, t = AUTO_GAINS.index(AUTO_START[0]), AUTO_TIMES.index(AUTO_START[1])

    def counts() -> float:
        return linear_lux / resolution(AUTO_GAINS[g], AUTO_TIMES[t])

    if counts() <= AUTO_COUNTS_LOW:
        while counts() <= AUTO_COUNTS_LOW and (g, t) != (len(AUTO_GAINS) - 1, len(AUTO_TIMES) - 1):
            if g < len(AUTO_GAINS) - 1:
                g += 1
            else:
                t += 1
    else:
        while counts() > AUTO_COUNTS_HIGH and t > 0:
            t -= 1
    return AUTO_GAINS[g], AUTO_TIMES[t]


class VEML7700(Driver):
    name: ClassVar[str] = "veml7700"
    label: ClassVar[str] = "Vishay VEML7700"
    simulated: ClassVar[str] = "drivers.sim.veml7700:SimVEML7700"
    default_address: ClassVar[int] = 0x10
    addresses: ClassVar[tuple[int, ...]] = (0x10,)
    quantities: ClassVar[tuple[str, ...]] = ("illuminance",)
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        "gain": (float, 0.25),
        "integration_time": (int, 100),
        "auto_range": (bool, True),
    }

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        gain, integration_ms, auto = (
            self.options[k] for k in ("gain", "integration_time", "auto_range")
        )
        if isinstance(gain, bool) or gain not in GAIN_CODES:
            raise ValueError(f"gain must be one of {sorted(GAIN_CODES)}, got {gain!r}")
        if isinstance(integration_ms, bool) or integration_ms not in IT_CODES:
            raise ValueError(
                f"integration_time must be one of {sorted(IT_CODES)} (ms), got {integration_ms!r}"
            )
        if not isinstance(auto, bool):
            raise ValueError(f"auto_range must be true or false, got {auto!r}")
        if auto and ("gain" in kwargs or "integration_time" in kwargs):
            raise ValueError(
                "auto_range chooses gain and integration_time; set auto_range = false to fix them"
            )
        self.setting: Setting = AUTO_START if auto else (float(gain), int(integration_ms))
        self._applied: Optional[Setting] = None  # what ALS_CONF holds, once open

    @classmethod
    def worst_read_time(cls, options: Mapping[str, Any]) -> float:
        # open(), or a read() that switches setting: the settle time of the slowest setting.
        if options.get("auto_range", True) is True:
            integration_ms = max(AUTO_TIMES)
        else:
            integration_ms = int(options.get("integration_time", 100))
        return settle_time_s((GAIN_MAX, integration_ms)) + BUS_ALLOWANCE_S

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        """Reads the ID register only: nothing a running driver set is touched."""
        try:
            data = bus.read_i2c_block_data(address, REG_ID, 2)
        except OSError:
            return None
        word = data[0] | (data[1] << 8)
        return f"VEML7700 id 0x{word:04x}" if data[0] == DEVICE_ID else None

    def open(self) -> None:
        self._applied = None
        try:
            ident = self._read_word(REG_ID)
        except OSError as e:
            raise self.no_answer(e) from e
        if ident & 0xFF != DEVICE_ID:
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: ID register reads 0x{ident:04x}, expected "
                f"low byte 0x{DEVICE_ID:02x}: this is not a VEML7700"
            )
        # The auto-range setting survives a re-open: it follows the light, not the chip.
        self._configure(self.setting)

    def read(self) -> Measurement:
        if self._applied is None:
            raise DriverError(f"{self.name}: read() before open()")
        if self.setting != self._applied:
            self._check_config()  # before the new write would hide a reset
            self._configure(self.setting)
        count = self._read_word(REG_ALS)
        # After the result, so a reset between configuring and reading cannot pass as 0 lx.
        self._check_config()
        setting = self._applied
        assert setting is not None
        if self.options["auto_range"]:
            self.setting = auto_setting(count * resolution(*setting))
        if count >= FULL_SCALE:
            hint = (
                f"the next reading uses gain {self.setting[0]:g}, {self.setting[1]} ms"
                if self.options["auto_range"]
                else "lower the gain or integration time, or enable auto_range"
            )
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: saturated (count 65535 at gain "
                f"{setting[0]:g}, {setting[1]} ms); {hint}"
            )
        return Measurement({"illuminance": illuminance(count, setting)})

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._write_word(REG_ALS_CONF, conf_word(self._applied or self.setting, True))
        self._applied = None

    def _configure(self, setting: Setting) -> None:
        # Shut down, set, power on: the first conversion then starts cleanly with the new
        # setting, and PSM is rewritten so a previous user's power-saving mode cannot linger.
        self._write_word(REG_ALS_CONF, conf_word(setting, shutdown=True))
        self._write_word(REG_PSM, PSM_OFF)
        self._write_word(REG_ALS_CONF, conf_word(setting))
        self.sleep(settle_time_s(setting))
        self._applied = setting

    def _check_config(self) -> None:
        assert self._applied is not None
        expected = conf_word(self._applied)
        conf = self._read_word(REG_ALS_CONF)
        if conf & CONF_FIELDS != expected:
            self._applied = None
            state = "shut down, as after power-on" if conf & CONF_SD else "reconfigured"
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: ALS_CONF reads 0x{conf:04x}, expected "
                f"0x{expected:04x} (chip {state}): it reset or something else wrote to it"
            )

    def _read_word(self, register: int) -> int:
        data = self.bus.read_i2c_block_data(self.address, register, 2)
        return int(data[0]) | (int(data[1]) << 8)

    def _write_word(self, register: int, value: int) -> None:
        self.bus.write_i2c_block_data(self.address, register, [value & 0xFF, value >> 8])
