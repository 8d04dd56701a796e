"""Ruuvi Air data formats 6 and E1: manufacturer data of company 0x0499.

Layouts: docs.ruuvi.com "Data format 6" and "Data format E1 (Extended v1)", both "Lifecycle:
In Production" (ruuvi/docs at 5ea92a6 and 94fb54e, November 2025). All fields big-endian.

    format 6 (20 bytes, Bluetooth 4 advertisement): 06, temperature int16 0.005 °C, humidity
        uint16 0.0025 %, pressure uint16 Pa above 50 000, PM2.5 uint16 0.1 µg/m³, CO2 uint16
        ppm, VOC index and NOx index (the upper 8 of 9 bits each), luminosity (logarithmic
        code), reserved, measurement sequence uint8, flags, the MAC's lowest 3 bytes.
    format E1 (40 bytes, Bluetooth 5 extended advertisement): E1, temperature, humidity,
        pressure as above, PM1.0/2.5/4.0/10 uint16 0.1 µg/m³, CO2 uint16 ppm, VOC and NOx index
        (upper 8 bits), luminosity uint24 0.01 lx, 3 reserved, measurement sequence uint24,
        flags, 5 reserved, MAC.

Flags: bit 0 "calibration in progress" (reported as `calibrating`), bit 6 and bit 7 the
least significant bit of the VOC and NOx index. A field at its "not available" marker (the
largest unsigned value, the smallest signed one; 0x1FF for the 9-bit indexes; 0xFF for the
luminosity code) is left out of the values. A device sending both formats sends the same
sample in each (format 6's sequence is the low byte of E1's); the device layer's interval
lets one reading through either way.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Callable, Optional

from drivers.ble.frame import BLEDecodeError, DecodedFrame

DF6 = "ruuvi_df6"
E1 = "ruuvi_e1"

_NA_SIGNED = -0x8000
_NA_U16 = 0xFFFF
_NA_U24 = 0xFFFFFF
_NA_INDEX = 0x1FF
_NA_LUX_CODE = 0xFF
_CALIBRATING = 0x01
_VOC_LSB_SHIFT = 6
_NOX_LSB_SHIFT = 7
# Format 6 luminosity: code = round(ln(lux + 1) / DELTA), DELTA = ln(65535 + 1) / 254.
_LUX_DELTA = math.log(65536) / 254


def _temperature(raw: int) -> float:
    return raw / 200  # 0.005 °C steps


def _humidity(raw: int) -> float:
    return raw / 400  # 0.0025 % steps


def _pressure(raw: int) -> float:
    return (raw + 50000) / 100  # Pa above 50 000 -> hPa


def _tenths(raw: int) -> float:
    return raw / 10


def _whole(raw: int) -> float:
    return float(raw)


def _lux_code(raw: int) -> float:
    return round(math.exp(raw * _LUX_DELTA) - 1, 2)


def _hundredths(raw: int) -> float:
    return raw / 100


# (name, struct field, not-available marker, conversion); the field order is the layout's.
_Field = tuple[str, str, int, Callable[[int], float]]
_COMMON: tuple[_Field, ...] = (
    ("temperature", "h", _NA_SIGNED, _temperature),
    ("humidity", "H", _NA_U16, _humidity),
    ("pressure", "H", _NA_U16, _pressure),
)
_DF6_FIELDS: tuple[_Field, ...] = (
    *_COMMON,
    ("pm2_5", "H", _NA_U16, _tenths),
    ("co2", "H", _NA_U16, _whole),
)
_E1_FIELDS: tuple[_Field, ...] = (
    *_COMMON,
    ("pm1_0", "H", _NA_U16, _tenths),
    ("pm2_5", "H", _NA_U16, _tenths),
    ("pm4_0", "H", _NA_U16, _tenths),
    ("pm10", "H", _NA_U16, _tenths),
    ("co2", "H", _NA_U16, _whole),
)


class _Layout:
    """One format: its measured fields, then the index bytes, luminosity and sequence."""

    def __init__(
        self,
        name: str,
        fields: tuple[_Field, ...],
        tail: str,
        lux: tuple[int, Callable[[int], float]],
        sequence_na: Optional[int],
    ) -> None:
        self.name, self.fields, self.lux, self.sequence_na = name, fields, lux, sequence_na
        self.struct = struct.Struct(">B" + "".join(f[1] for f in fields) + tail)


# Tails: VOC, NOx, luminosity, reserved, sequence, flags, reserved, MAC. The 24-bit fields of
# E1 are read as 3-byte strings and converted below (struct has no 24-bit code).
_LAYOUTS: dict[int, _Layout] = {
    0x06: _Layout(DF6, _DF6_FIELDS, "BBBxBB3s", (_NA_LUX_CODE, _lux_code), None),
    0xE1: _Layout(E1, _E1_FIELDS, "BB3s3x3sB5x6s", (_NA_U24, _hundredths), _NA_U24),
}


def decode(data: bytes) -> Optional[DecodedFrame]:
    """Format 6 or E1 (first byte 06 or E1), or None for any other Ruuvi format."""
    layout = _LAYOUTS.get(data[0]) if data else None
    if layout is None:
        return None
    if len(data) != layout.struct.size:
        raise BLEDecodeError(
            layout.name, f"payload is {len(data)} bytes, the format has {layout.struct.size}"
        )
    unpacked = layout.struct.unpack(data)
    count = len(layout.fields)
    values: dict[str, Any] = {}
    for (name, _, not_available, convert), raw in zip(layout.fields, unpacked[1 : 1 + count]):
        if raw != not_available:
            values[name] = convert(raw)
    voc_high, nox_high, lux_raw, sequence_raw, flags, _mac = unpacked[1 + count :]
    for name, high, shift in (("voc_index", voc_high, _VOC_LSB_SHIFT),
                              ("nox_index", nox_high, _NOX_LSB_SHIFT)):  # fmt: skip
        index = high << 1 | (flags >> shift) & 1
        if index != _NA_INDEX:
            values[name] = index
    lux = _int(lux_raw)
    lux_na, lux_convert = layout.lux
    if lux != lux_na:
        values["illuminance"] = lux_convert(lux)
    values["calibrating"] = bool(flags & _CALIBRATING)
    sequence: Optional[int] = _int(sequence_raw)
    if sequence == layout.sequence_na:
        sequence = None
    return DecodedFrame(layout.name, values, packet_id=sequence)


def _int(raw: Any) -> int:
    return int.from_bytes(raw, "big") if isinstance(raw, bytes) else int(raw)
