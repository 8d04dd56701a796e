"""A simulated Bosch BME280/BMP280 that answers at register level.

The chip turns physical values into ADC codes by inverting Bosch's fixed-point reference
compensation (BME280 datasheet section 8.2, BMP280 datasheet 3.11.3): deliberately different
code from the driver's double-precision formulas, so a test of one checks the other.
"""

from __future__ import annotations

import struct
from typing import Callable, Optional

from drivers.sim.bus import RegisterChip
from drivers.sim.environment import Environment

# Trimming values. T and P are the BMP280 datasheet's worked example (section 3.12); the
# humidity words are typical of production BME280 parts.
DATASHEET_CALIBRATION = {
    "t1": 27504, "t2": 26435, "t3": -1000,
    "p1": 36477, "p2": -10685, "p3": 3024, "p4": 2855, "p5": 140, "p6": -7,
    "p7": 15500, "p8": -14600, "p9": 6000,
    "h1": 75, "h2": 362, "h3": 0, "h4": 313, "h5": 50, "h6": 30,
}  # fmt: skip


def t_fine_int(cal: dict[str, int], adc_t: int) -> int:
    var1 = (((adc_t >> 3) - (cal["t1"] << 1)) * cal["t2"]) >> 11
    var2 = (((((adc_t >> 4) - cal["t1"]) * ((adc_t >> 4) - cal["t1"])) >> 12) * cal["t3"]) >> 14
    return var1 + var2


def temperature_centi_int(cal: dict[str, int], adc_t: int) -> int:
    """0.01 °C, BME280_compensate_T_int32."""
    return (t_fine_int(cal, adc_t) * 5 + 128) >> 8


def pressure_q24_8_int(cal: dict[str, int], adc_p: int, t_fine: int) -> int:
    """Pa in Q24.8, BME280_compensate_P_int64."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * cal["p6"]
    var2 = var2 + ((var1 * cal["p5"]) << 17)
    var2 = var2 + (cal["p4"] << 35)
    var1 = ((var1 * var1 * cal["p3"]) >> 8) + ((var1 * cal["p2"]) << 12)
    var1 = (((1 << 47) + var1) * cal["p1"]) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = int((((p << 31) - var2) * 3125) / var1)  # C division truncates toward zero
    var1 = (cal["p9"] * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal["p8"] * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal["p7"] << 4)


def humidity_q22_10_int(cal: dict[str, int], adc_h: int, t_fine: int) -> int:
    """%RH in Q22.10, BME280_compensate_H_int32."""
    v = t_fine - 76800
    v = ((((adc_h << 14) - (cal["h4"] << 20) - (cal["h5"] * v)) + 16384) >> 15) * (
        ((((((v * cal["h6"]) >> 10) * (((v * cal["h3"]) >> 11) + 32768)) >> 10) + 2097152)
         * cal["h2"] + 8192) >> 14
    )  # fmt: skip
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * cal["h1"]) >> 4)
    v = min(max(v, 0), 419430400)
    return v >> 12


def _bisect(f: Callable[[int], float], target: float, lo: int, hi: int, increasing: bool) -> int:
    while lo < hi:
        mid = (lo + hi) // 2
        below = f(mid) < target if increasing else f(mid) > target
        if below:
            lo = mid + 1
        else:
            hi = mid
    return lo


class SimBME280(RegisterChip):
    """Register-level BME280 (chip_id 0x60) or BMP280 (chip_id 0x58, no humidity)."""

    def __init__(
        self,
        environment: Callable[[], Environment] = Environment,
        calibration: Optional[dict[str, int]] = None,
        chip_id: int = 0x60,
    ) -> None:
        super().__init__()
        self.environment = environment
        self.calibration = dict(calibration or DATASHEET_CALIBRATION)
        self.chip_id = chip_id
        self.forced_raw: Optional[tuple[int, int, int]] = None  # (adc_p, adc_t, adc_h) for tests
        self.conversions = 0
        self.stuck = False
        self._latched_ctrl_hum = 0
        self._power_on_reset()

    @property
    def has_humidity(self) -> bool:
        return self.chip_id == 0x60

    def _power_on_reset(self) -> None:
        self.registers[:] = bytes(256)
        self.registers[0xD0] = self.chip_id
        c = self.calibration
        self.registers[0x88:0xA0] = struct.pack(
            "<HhhHhhhhhhhh", c["t1"], c["t2"], c["t3"], c["p1"], c["p2"], c["p3"],
            c["p4"], c["p5"], c["p6"], c["p7"], c["p8"], c["p9"],
        )  # fmt: skip
        if self.has_humidity:
            self.registers[0xA1] = c["h1"]
            h4, h5 = c["h4"] & 0xFFF, c["h5"] & 0xFFF
            self.registers[0xE1:0xE8] = (
                struct.pack("<hB", c["h2"], c["h3"])
                + bytes([h4 >> 4, (h4 & 0x0F) | ((h5 & 0x0F) << 4), h5 >> 4])
                + struct.pack("<b", c["h6"])
            )
        # Data registers read 0x80000 / 0x8000 until the first conversion (datasheet table 18).
        self.registers[0xF7:0xFF] = bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])
        self._latched_ctrl_hum = 0

    def reset(self) -> None:
        """What a brown-out does: configuration gone, as after power-on."""
        self._power_on_reset()

    def write_register(self, register: int, value: int) -> None:
        if register == 0xE0:
            if value == 0xB6:
                self._power_on_reset()
            return
        if register in (0xD0, 0xF3) or 0x88 <= register <= 0xA1 or 0xE1 <= register <= 0xE7:
            return  # read-only
        if register == 0xF2 and not self.has_humidity:
            return
        self.registers[register] = value
        if register == 0xF4:
            self._latched_ctrl_hum = self.registers[0xF2] & 0x07
            if value & 0x03 in (0b01, 0b10):
                self._convert(value)
                self.registers[0xF4] = value & ~0x03  # forced mode returns to sleep

    def read_register(self, register: int) -> int:
        if register == 0xF3:
            return 0x08 if self.stuck else 0x00
        return self.registers[register]

    def _convert(self, ctrl_meas: int) -> None:
        self.conversions += 1
        osrs_t, osrs_p = ctrl_meas >> 5, (ctrl_meas >> 2) & 0x07
        adc_p, adc_t, adc_h = self.forced_raw or self._raw_from_environment(self.environment())
        if not osrs_t:
            adc_t = 0x80000
        if not osrs_p:
            adc_p = 0x80000
        if not self._latched_ctrl_hum:
            adc_h = 0x8000
        self.registers[0xF7:0xFD] = bytes(
            [adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4,
             adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4]
        )  # fmt: skip
        if self.has_humidity:
            self.registers[0xFD:0xFF] = bytes([adc_h >> 8, adc_h & 0xFF])

    def _raw_from_environment(self, env: Environment) -> tuple[int, int, int]:
        cal = self.calibration
        adc_t = _bisect(
            lambda a: temperature_centi_int(cal, a), env.temperature * 100, 0, 0xFFFFF, True
        )
        t_fine = t_fine_int(cal, adc_t)
        adc_p = _bisect(
            lambda a: pressure_q24_8_int(cal, a, t_fine),
            env.pressure * 100 * 256,
            0,
            0xFFFFF,
            False,
        )
        adc_h = _bisect(
            lambda a: humidity_q22_10_int(cal, a, t_fine), env.humidity * 1024, 0, 0xFFFF, True
        )
        return adc_p, adc_t, adc_h
