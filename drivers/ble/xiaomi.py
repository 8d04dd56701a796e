"""Xiaomi MiBeacon: service data of UUID 0xFE95, as Xiaomi's stock firmware sends it
(LYWSD03MMC, LYWSDCGQ, CGG1, MHO-C401, LYWSD02, CGDK2, XMWSDJ04MMC, ...).

Layout: Mi IoT developer platform "MiBeacon" and "Object definition" pages (iot.mi.com, BLE
embedded development), as read by the reference parsers xiaomi-ble (Bluetooth-Devices,
src/xiaomi_ble/parser.py, July 2026) and ble_monitor (custom-components). Little-endian:

    frame control uint16  bit 3 encrypted, bit 4 MAC included, bit 5 capability included,
                          bit 6 objects included, bit 7 mesh, bits 12-15 version
    product id uint16, frame counter uint8
    [MAC, 6 bytes, least significant first]  [capability uint8 [I/O uint8 when its bit 5 is set]]
    objects: id uint16, length uint8, value ... ; or, encrypted (version 4 and 5), the
    objects' AES-CCM ciphertext, a 3-byte extended counter and a 4-byte MIC.

The encrypted nonce is the MAC (least significant byte first), the product id and frame
counter as sent, and the extended counter; the additional data is one byte 0x11. The
frame counter with the extended counter is a 32-bit counter for replay protection (the
nonce authenticates both); the frame counter alone is the packet id.

Refused or left alone, documented in docs/ble.md:
- version 2 and 3 encryption ("legacy", AES-CCM without a usable integrity check): any key
  "decrypts" it to something, so a wrong key would give wrong values: BLEKeyError, never values;
- mesh frames, versions below 2, frames without objects (a device's pairing or capability
  beacons) and frames carrying another device's MAC: None, they are not this device's data;
- an object id we do not read is skipped (each object says its length); a known object of a
  length its definition does not have is skipped too: it cannot be read with confidence.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Optional

from drivers.ble import ccm
from drivers.ble.frame import (
    SERVICE_DATA_16,
    BLEDecodeError,
    BLEKeyError,
    DecodedFrame,
    Family,
    Source,
    mac_bytes,
)

FORMAT = "xiaomi"
UUID16 = 0xFE95

_ENCRYPTED = 1 << 3
_MAC_INCLUDED = 1 << 4
_CAPABILITY_INCLUDED = 1 << 5
_OBJECTS_INCLUDED = 1 << 6
_MESH = 1 << 7
_VERSION_SHIFT = 12
_CAPABILITY_IO = 0x20  # capability bit 5: an I/O capability byte follows (as both parsers read)
_HEADER = 5  # frame control, product id, frame counter
_EXT_COUNTER = 3
_AAD = b"\x11"
_FIRST_AUTHENTICATED_VERSION = 4


@dataclass(frozen=True)
class _Object:
    layout: struct.Struct
    # (name, factor or None for a float sent as such, decimals) per field of the layout
    fields: tuple[tuple[str, Optional[float], int], ...]


def _o(fmt: str, *fields: tuple[str, Optional[float], int]) -> _Object:
    return _Object(struct.Struct("<" + fmt), fields)


# Object id -> layout and names (Mi IoT "Object definition"; the ids the reference parsers read
# for thermometers, hygrometers, plant sensors and their batteries).
OBJECTS: dict[int, _Object] = {
    0x1004: _o("h", ("temperature", 0.1, 1)),  # int16, 0.1 °C
    0x1006: _o("H", ("humidity", 0.1, 1)),  # uint16, 0.1 %
    0x1008: _o("B", ("moisture", 1.0, 0)),  # uint8, % (soil)
    0x1009: _o("H", ("conductivity", 1.0, 0)),  # uint16, µS/cm
    0x100A: _o("B", ("battery", 1.0, 0)),  # uint8, %
    0x100D: _o("hH", ("temperature", 0.1, 1), ("humidity", 0.1, 1)),
    0x4803: _o("B", ("battery", 1.0, 0)),  # uint8, % (newer "spec" object ids)
    0x4C01: _o("f", ("temperature", None, 2)),  # float32, °C
    0x4C02: _o("B", ("humidity", 1.0, 0)),  # uint8, %
    0x4C03: _o("B", ("battery", 1.0, 0)),  # uint8, %
    0x4C08: _o("f", ("humidity", None, 2)),  # float32, %
}


def decode(address: str, data: bytes, key: Optional[bytes]) -> Optional[DecodedFrame]:
    """Decode MiBeacon service data (without the UUID); None when it is not a readable
    MiBeacon of this device; raises BLEDecodeError (BLEKeyError for decryption)."""
    if len(data) < _HEADER:
        raise BLEDecodeError(FORMAT, f"frame is {len(data)} bytes, shorter than its header")
    control = int.from_bytes(data[:2], "little")
    version = control >> _VERSION_SHIFT
    if control & _MESH or version < 2 or not control & _OBJECTS_INCLUDED:
        return None
    pos = _HEADER
    mac: Optional[bytes] = None
    if control & _MAC_INCLUDED:
        if len(data) < pos + 6:
            raise BLEDecodeError(FORMAT, "frame control says a MAC follows; it is cut short")
        mac = data[pos : pos + 6][::-1]
        pos += 6
        if _is_mac(address) and mac != mac_bytes(FORMAT, address):
            return None  # another device's frame (relayed, or not ours)
    if control & _CAPABILITY_INCLUDED:
        if len(data) < pos + 1:
            raise BLEDecodeError(FORMAT, "frame control says a capability byte follows; cut short")
        pos += 2 if data[pos] & _CAPABILITY_IO else 1
    packet_id = data[4]
    counter = None
    encrypted = bool(control & _ENCRYPTED)
    if encrypted:
        if version < _FIRST_AUTHENTICATED_VERSION:
            raise BLEKeyError(
                FORMAT,
                f"MiBeacon v{version} encryption has no integrity check, so a wrong key cannot "
                "be told from a right one: not decoded (use a firmware that sends v4/v5 or BTHome)",
            )
        if len(data) < pos + 1 + _EXT_COUNTER + ccm.MIC_LENGTH:
            raise BLEDecodeError(FORMAT, "encrypted frame is shorter than its counter and MIC")
        if mac is None:
            mac = mac_bytes(FORMAT, address)
        ext = data[-7:-4]
        nonce = mac[::-1] + data[2:5] + ext
        payload = ccm.decrypt(FORMAT, key, nonce, data[pos:-7], data[-4:], _AAD)
        counter = int.from_bytes(data[4:5] + ext, "little")
    else:
        payload = data[pos:]
    return DecodedFrame(
        FORMAT,
        _objects(payload),
        packet_id=packet_id,
        counter=counter,
        encrypted=encrypted,
        counter_bits=32 if encrypted else None,
    )


def _objects(payload: bytes) -> dict[str, Any]:
    values: dict[str, Any] = {}
    pos, end = 0, len(payload)
    while pos < end:
        if pos + 3 > end:
            raise BLEDecodeError(FORMAT, f"object header cut short at byte {pos}")
        object_id = int.from_bytes(payload[pos : pos + 2], "little")
        size = payload[pos + 2]
        pos += 3
        if pos + size > end:
            raise BLEDecodeError(
                FORMAT, f"object 0x{object_id:04x} needs {size} bytes, {end - pos} left"
            )
        spec = OBJECTS.get(object_id)
        if spec is not None and size == spec.layout.size:
            raws = spec.layout.unpack_from(payload, pos)
            for (name, factor, decimals), raw in zip(spec.fields, raws):
                value = raw if factor is None else raw * factor
                values[name] = round(float(value), decimals)
        pos += size
    return values


def _is_mac(address: str) -> bool:
    try:
        mac_bytes(FORMAT, address)
    except BLEKeyError:
        return False
    return True


FAMILY = Family("xiaomi", (Source(SERVICE_DATA_16, UUID16, decode),), keyed=True)
