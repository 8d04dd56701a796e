"""RuuviTag data format 5 (RAWv2): manufacturer data of company 0x0499.

Layout: docs.ruuvi.com "Data format 5 (RAWv2)", in production, last updated 2021-08-25.
24 bytes, big-endian: format (5), temperature int16 in 0.005 °C, humidity uint16 in
0.0025 %, pressure uint16 in Pa above 50 000 Pa, acceleration x/y/z int16 in mG, power info
uint16 (11 bits battery mV above 1600, 5 bits TX power in 2 dBm above -40 dBm), movement
counter uint8, measurement sequence uint16, MAC (6 bytes).

"Not available" is the largest value of an unsigned field, the smallest of a signed one:
such a field is left out of the values, never reported as a number. The Ruuvi Air's
formats 6 and E1 are in drivers/ble/ruuvi_air.py; decode() sends them there. Other Ruuvi data
formats (3, C5, 8, ...) are not decoded: decode() returns None for them.
"""

from __future__ import annotations

import struct
from typing import Any, Optional

from drivers.ble import ruuvi_air
from drivers.ble.frame import MANUFACTURER_DATA, BLEDecodeError, DecodedFrame, Family, Source

FORMAT = "ruuvi_v5"
RUUVI = 0x0499
DATA_FORMAT = 5
_LAYOUT = struct.Struct(">BhHHhhhHBH6s")
_STANDARD_GRAVITY = 9.80665  # m/s² per g (CGPM 1901): Ruuvi sends mG, we report m/s²

# Not-available markers per field.
_NA_SIGNED = -0x8000
_NA_U16 = 0xFFFF
_NA_U8 = 0xFF
_NA_BATTERY = 2047  # 11 bits all set
_NA_TX_POWER = 31  # 5 bits all set


def decode(data: bytes) -> Optional[DecodedFrame]:
    """Any Ruuvi data format we read, by its first byte; None for the others."""
    if not data:
        return None
    if data[0] != DATA_FORMAT:
        return ruuvi_air.decode(data)
    if len(data) != _LAYOUT.size:
        raise BLEDecodeError(FORMAT, f"payload is {len(data)} bytes, RAWv2 has {_LAYOUT.size}")
    (_, temp, humidity, pressure, ax, ay, az, power, movement, sequence, _mac) = _LAYOUT.unpack(
        data
    )
    values: dict[str, Any] = {}
    if temp != _NA_SIGNED:
        values["temperature"] = temp / 200  # 0.005 °C steps
    if humidity != _NA_U16:
        values["humidity"] = humidity / 400  # 0.0025 % steps
    if pressure != _NA_U16:
        values["pressure"] = (pressure + 50000) / 100  # Pa -> hPa
    for axis, raw in (("x", ax), ("y", ay), ("z", az)):
        if raw != _NA_SIGNED:
            values[f"acceleration_{axis}"] = raw * _STANDARD_GRAVITY / 1000
    battery_mv = power >> 5
    if battery_mv != _NA_BATTERY:
        values["voltage"] = (battery_mv + 1600) / 1000
    tx_power = power & 0x1F
    if tx_power != _NA_TX_POWER:
        values["tx_power"] = tx_power * 2 - 40
    if movement != _NA_U8:
        values["movement_counter"] = movement
    return DecodedFrame(FORMAT, values, packet_id=None if sequence == _NA_U16 else sequence)


FAMILY = Family("ruuvi", (Source(MANUFACTURER_DATA, RUUVI, lambda _a, data, _k: decode(data)),))
