"""Bosch BME280 (temperature, humidity, pressure) and BMP280 (no humidity) over I2C.

Follows the BME280 datasheet (BST-BME280-DS002, rev 1.6) and the BMP280 datasheet
(BST-BMP280-DS001): chip-id check, soft reset, calibration (trimming) read once, forced mode, one
burst read of all data registers so every quantity comes from the same conversion, and the
double-precision compensation formulas of section 8.1 (BME280) / 3.12 (BMP280).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from drivers.base import Driver, DriverError, Measurement, Sleep

REG_CALIB_TP = 0x88  # 0x88..0x9F: dig_T1..dig_P9; 0xA0 reserved; 0xA1: dig_H1
REG_CALIB_H = 0xE1  # 0xE1..0xE7: dig_H2..dig_H6
REG_CHIP_ID = 0xD0
REG_RESET = 0xE0
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_CONFIG = 0xF5
REG_DATA = 0xF7  # press[3], temp[3], hum[2]

RESET_WORD = 0xB6
STATUS_MEASURING = 0x08
STATUS_IM_UPDATE = 0x01
MODE_SLEEP = 0b00
MODE_FORCED = 0b01

CHIP_ID_BME280 = 0x60
CHIP_IDS_BMP280 = (0x56, 0x57, 0x58)

# Oversampling factor -> register code (datasheet table 20 and following).
OVERSAMPLING_CODES = {1: 0b001, 2: 0b010, 4: 0b011, 8: 0b100, 16: 0b101}
IIR_FILTER_CODES = {0: 0b000, 2: 0b001, 4: 0b010, 8: 0b011, 16: 0b100}

# An ADC word of all-zero-but-MSB means "measurement skipped"; the chip reports it this way.
SKIPPED_20BIT = 0x80000
SKIPPED_16BIT = 0x8000


@dataclass(frozen=True)
class Calibration:
    t1: int
    t2: int
    t3: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    p6: int
    p7: int
    p8: int
    p9: int
    h1: int = 0
    h2: int = 0
    h3: int = 0
    h4: int = 0
    h5: int = 0
    h6: int = 0

    @classmethod
    def from_registers(cls, tp: bytes, h: Optional[bytes]) -> Calibration:
        """tp: 26 bytes from 0x88 (0xA1 last); h: 7 bytes from 0xE1, or None for a BMP280."""
        t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9 = struct.unpack("<HhhHhhhhhhhh", tp[:24])
        if h is None:
            return cls(t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9)
        h1 = tp[25]
        h2, h3 = struct.unpack("<hB", h[0:3])
        # dig_H4 and dig_H5 are 12-bit signed values that share the nibbles of 0xE5.
        h4 = _signed12((h[3] << 4) | (h[4] & 0x0F))
        h5 = _signed12((h[5] << 4) | (h[4] >> 4))
        h6 = struct.unpack("<b", h[6:7])[0]
        return cls(t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6)


def _signed12(value: int) -> int:
    return value - 0x1000 if value & 0x800 else value


def compensate_temperature(cal: Calibration, adc_t: int) -> tuple[float, float]:
    """Returns (°C, t_fine). Datasheet 8.1, 'compensate_T_double'."""
    var1 = (adc_t / 16384.0 - cal.t1 / 1024.0) * cal.t2
    var2 = ((adc_t / 131072.0 - cal.t1 / 8192.0) ** 2) * cal.t3
    t_fine = var1 + var2
    return t_fine / 5120.0, t_fine


def compensate_pressure(cal: Calibration, adc_p: int, t_fine: float) -> float:
    """Returns Pa. Datasheet 8.1, 'compensate_P_double'."""
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * cal.p6 / 32768.0
    var2 = var2 + var1 * cal.p5 * 2.0
    var2 = var2 / 4.0 + cal.p4 * 65536.0
    var1 = (cal.p3 * var1 * var1 / 524288.0 + cal.p2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * cal.p1
    if var1 == 0.0:
        raise DriverError("pressure compensation divides by zero: calibration data is corrupt")
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = cal.p9 * p * p / 2147483648.0
    var2 = p * cal.p8 / 32768.0
    return p + (var1 + var2 + cal.p7) / 16.0


def compensate_humidity(cal: Calibration, adc_h: int, t_fine: float) -> float:
    """Returns %RH, clamped to 0..100 as the datasheet does (8.1, 'compensate_H_double')."""
    var_h = t_fine - 76800.0
    var_h = (adc_h - (cal.h4 * 64.0 + cal.h5 / 16384.0 * var_h)) * (
        cal.h2 / 65536.0 * (1.0 + cal.h6 / 67108864.0 * var_h * (1.0 + cal.h3 / 67108864.0 * var_h))
    )
    var_h = var_h * (1.0 - cal.h1 * var_h / 524288.0)
    return min(100.0, max(0.0, var_h))


def measurement_time_s(osrs_t: int, osrs_p: int, osrs_h: int) -> float:
    """Maximum conversion time in forced mode, datasheet section 9.1 (BME280)."""
    ms = 1.25 + 2.3 * osrs_t + (2.3 * osrs_p + 0.575) + (2.3 * osrs_h + 0.575 if osrs_h else 0.0)
    return ms / 1000.0


class BME280(Driver):
    name: ClassVar[str] = "bme280"
    label: ClassVar[str] = "Bosch BME280"
    simulated: ClassVar[str] = "drivers.sim.bme280:SimBME280"
    default_address: ClassVar[int] = 0x76
    addresses: ClassVar[tuple[int, ...]] = (0x76, 0x77)
    quantities: ClassVar[tuple[str, ...]] = ("temperature", "humidity", "pressure")
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        "oversampling_temperature": (int, 1),
        "oversampling_pressure": (int, 1),
        "oversampling_humidity": (int, 1),
        "iir_filter": (int, 0),
    }
    has_humidity: ClassVar[bool] = True
    chip_ids: ClassVar[tuple[int, ...]] = (CHIP_ID_BME280,)

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        for key in (k for k in self.options_schema if k.startswith("oversampling_")):
            if self.options[key] not in OVERSAMPLING_CODES:
                raise ValueError(f"{key} must be one of {sorted(OVERSAMPLING_CODES)}")
        if self.options["iir_filter"] not in IIR_FILTER_CODES:
            raise ValueError(f"iir_filter must be one of {sorted(IIR_FILTER_CODES)}")
        self.calibration: Optional[Calibration] = None

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        # The chip-id register is read-only and reading it does not disturb a conversion.
        chip_id = bus.read_i2c_block_data(address, REG_CHIP_ID, 1)[0]
        if chip_id in cls.chip_ids:
            return f"{cls.name.upper()} (chip id 0x{chip_id:02x})"
        return None

    def open(self) -> None:
        try:
            chip_id = self._read(REG_CHIP_ID, 1)[0]
        except OSError as e:
            raise self.no_answer(e) from e
        if chip_id not in self.chip_ids:
            hint = ""
            if chip_id == CHIP_ID_BME280:
                hint = " (that is a BME280: use driver 'bme280')"
            elif chip_id in CHIP_IDS_BMP280:
                hint = " (that is a BMP280, which has no humidity: use driver 'bmp280')"
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: chip id 0x{chip_id:02x}, "
                f"expected {' or '.join(f'0x{c:02x}' for c in self.chip_ids)}{hint}"
            )
        self._write(REG_RESET, RESET_WORD)
        self.sleep(0.002)  # start-up time after reset, datasheet table 1
        for _ in range(10):  # NVM copy to image registers takes a few ms
            if not self._read(REG_STATUS, 1)[0] & STATUS_IM_UPDATE:
                break
            self.sleep(0.002)
        else:
            raise DriverError(f"{self.name} at 0x{self.address:02x}: calibration copy never ended")
        tp = self._read(REG_CALIB_TP, 26)
        h = self._read(REG_CALIB_H, 7) if self.has_humidity else None
        self.calibration = Calibration.from_registers(tp, h)
        if self.calibration.t1 == 0 or self.calibration.p1 == 0:
            raise DriverError(f"{self.name} at 0x{self.address:02x}: calibration data is blank")
        self._write(REG_CONFIG, IIR_FILTER_CODES[self.options["iir_filter"]] << 2)

    def _ctrl_meas(self, mode: int) -> int:
        osrs_t = OVERSAMPLING_CODES[self.options["oversampling_temperature"]]
        osrs_p = OVERSAMPLING_CODES[self.options["oversampling_pressure"]]
        return (osrs_t << 5) | (osrs_p << 2) | mode

    def read(self) -> Measurement:
        if self.calibration is None:
            raise DriverError(f"{self.name}: read() before open()")
        if self.has_humidity:
            # ctrl_hum only takes effect after the following write to ctrl_meas (datasheet 5.4.3).
            self._write(REG_CTRL_HUM, OVERSAMPLING_CODES[self.options["oversampling_humidity"]])
        self._write(REG_CTRL_MEAS, self._ctrl_meas(MODE_FORCED))
        self.sleep(
            measurement_time_s(
                self.options["oversampling_temperature"],
                self.options["oversampling_pressure"],
                self.options.get("oversampling_humidity", 0),
            )
        )
        for _ in range(20):
            if not self._read(REG_STATUS, 1)[0] & STATUS_MEASURING:
                break
            self.sleep(0.001)
        else:
            raise DriverError(f"{self.name} at 0x{self.address:02x}: conversion never finished")
        data = self._read(REG_DATA, 8 if self.has_humidity else 6)
        return self.decode(data)

    def decode(self, data: bytes) -> Measurement:
        """Turns one burst of data registers (0xF7 onwards) into a measurement."""
        assert self.calibration is not None
        adc_p = (data[0] << 12) | (data[1] << 4) | (data[2] >> 4)
        adc_t = (data[3] << 12) | (data[4] << 4) | (data[5] >> 4)
        if adc_t == SKIPPED_20BIT or adc_p == SKIPPED_20BIT:
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: chip reported a skipped "
                "measurement (it may have reset and lost its configuration)"
            )
        temperature, t_fine = compensate_temperature(self.calibration, adc_t)
        values = {
            "temperature": temperature,
            "pressure": compensate_pressure(self.calibration, adc_p, t_fine) / 100.0,
        }
        if self.has_humidity:
            adc_h = (data[6] << 8) | data[7]
            if adc_h == SKIPPED_16BIT:
                raise DriverError(f"{self.name} at 0x{self.address:02x}: humidity was skipped")
            values["humidity"] = compensate_humidity(self.calibration, adc_h, t_fine)
        return Measurement(values)

    def _read(self, register: int, length: int) -> bytes:
        return bytes(self.bus.read_i2c_block_data(self.address, register, length))

    def _write(self, register: int, value: int) -> None:
        self.bus.write_byte_data(self.address, register, value)


class BMP280(BME280):
    name: ClassVar[str] = "bmp280"
    label: ClassVar[str] = "Bosch BMP280"
    simulated: ClassVar[str] = "drivers.sim.bme280:SimBME280"
    simulated_arguments: ClassVar[Mapping[str, Any]] = {"chip_id": 0x58}
    quantities: ClassVar[tuple[str, ...]] = ("temperature", "pressure")
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        k: v for k, v in BME280.options_schema.items() if "humidity" not in k
    }
    has_humidity: ClassVar[bool] = False
    chip_ids: ClassVar[tuple[int, ...]] = CHIP_IDS_BMP280
