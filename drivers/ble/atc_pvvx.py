"""Custom firmware for Xiaomi LYWSD03MMC-class thermometers: service data of UUID 0x181A.

Layouts: pvvx/ATC_MiThermometer README ("Bluetooth Advertising Formats": atc1441 format,
Custom format) and its firmware header src/custom_beacon.h (adv_custom_t, adv_atc1441_t and
the encrypted adv_cust_enc_t / adv_atc_enc_t with the nonce of custom_beacon.c, described in
pvvx issue #94), as of firmware 4.x; atc1441/ATC_MiThermometer README for the atc1441 format.
The firmware authors tell the formats apart by length, and so do we (service data after the
UUID; bleak strips the AD length, type and UUID):

    13 bytes  atc1441        MAC (MSB first), temperature int16 BE 0.1 °C, humidity uint8 %,
                             battery uint8 %, battery uint16 BE mV, frame counter uint8
    15 bytes  pvvx custom    MAC (LSB first), temperature int16 LE 0.01 °C, humidity
                             uint16 LE 0.01 %, battery uint16 LE mV, battery uint8 %,
                             counter uint8, flags uint8
    11 bytes  pvvx encrypted counter uint8, AES-CCM of (temperature int16 LE 0.01 °C,
                             humidity uint16 LE 0.01 %, battery uint8 %, flags uint8), MIC 4
     8 bytes  atc1441 enc.   counter uint8, AES-CCM of (temperature uint8 in 0.5 °C above
                             -40 °C, humidity uint8 in 0.5 %, battery: bit 7 trigger output,
                             bits 0-6 %), MIC 4

Encrypted: nonce = the device MAC least significant byte first, then the 5 bytes of the AD
header as sent (length, 0x16, UUID 1A 18, counter); additional data one byte 0x11. Any other
length is not one of these formats: None (UUID 0x181A is the SIG's Environmental Sensing
service, which other devices may use). That includes 14 bytes: neither atc1441's 13 nor pvvx's
15, and the pvvx README documents no such layout, so its bytes cannot be read with confidence.

Flags (pvvx README): bit 0 reed switch input, bit 1 trigger output (GPIO_TRG pin); bits 2-4
(trigger configuration and trigger events) are not reported.
"""

from __future__ import annotations

import struct
from typing import Any, Optional

from drivers.ble import ccm
from drivers.ble.frame import SERVICE_DATA_16, DecodedFrame, Family, Source, mac_bytes

UUID16 = 0x181A
ATC1441 = "atc1441"
PVVX = "pvvx"

_ATC1441 = struct.Struct(">6shBBHB")
_PVVX = struct.Struct("<6shHHBB")  # + flags byte
_PVVX_SECRET = struct.Struct("<hHBB")
_AD_SERVICE_DATA = 0x16
_AAD = b"\x11"


def decode(address: str, data: bytes, key: Optional[bytes]) -> Optional[DecodedFrame]:
    length = len(data)
    if length == 13:
        _mac, temp, humidity, battery, battery_mv, counter = _ATC1441.unpack(data)
        values: dict[str, Any] = {
            "temperature": temp / 10,
            "humidity": float(humidity),
            "battery": float(battery),
            "voltage": battery_mv / 1000,
        }
        return DecodedFrame(ATC1441, values, packet_id=counter)
    if length == 15:
        _mac, temp, humidity, battery_mv, battery, counter = _PVVX.unpack_from(data)
        values = {
            "temperature": temp / 100,
            "humidity": humidity / 100,
            "battery": float(battery),
            "voltage": battery_mv / 1000,
        }
        values.update(_flags(data[14]))
        return DecodedFrame(PVVX, values, packet_id=counter)
    if length == 11:
        plain, counter = _decrypt(PVVX, address, data, key)
        temp, humidity, battery, flags = _PVVX_SECRET.unpack(plain)
        values = {"temperature": temp / 100, "humidity": humidity / 100, "battery": float(battery)}
        values.update(_flags(flags))
        return _encrypted(PVVX, values, counter)
    if length == 8:
        plain, counter = _decrypt(ATC1441, address, data, key)
        values = {
            "temperature": plain[0] / 2 - 40,
            "humidity": plain[1] / 2,
            "battery": float(plain[2] & 0x7F),
            "trigger_output": bool(plain[2] & 0x80),
        }
        return _encrypted(ATC1441, values, counter)
    return None


def _flags(flags: int) -> dict[str, Any]:
    return {"reed_switch": bool(flags & 0x01), "trigger_output": bool(flags & 0x02)}


def _decrypt(format: str, address: str, data: bytes, key: Optional[bytes]) -> tuple[bytes, int]:
    # The AD header as the firmware sent it: length = payload + UUID (2) + AD type (1).
    header = bytes((len(data) + 3, _AD_SERVICE_DATA)) + UUID16.to_bytes(2, "little") + data[:1]
    nonce = mac_bytes(format, address)[::-1] + header
    return ccm.decrypt(format, key, nonce, data[1:-4], data[-4:], _AAD), data[0]


def _encrypted(format: str, values: dict[str, Any], counter: int) -> DecodedFrame:
    # The one counter byte is both the frame counter and the nonce counter.
    return DecodedFrame(
        format, values, packet_id=counter, counter=counter, encrypted=True, counter_bits=8
    )


FAMILY = Family("atc_pvvx", (Source(SERVICE_DATA_16, UUID16, decode),), keyed=True)
