"""Advertisement payloads as real sensors and beacons put them on the air, for the simulator.

Each function returns the bytes bleak hands over in AdvertisementData: service data without
its UUID, manufacturer data without its company id. They are encoders written from the
published layouts, checked in tests/test_ble_scanner.py against the specs' own examples:

- BTHome v2 (bthome.io/format, bthome.io/encryption): service data UUID 0xFCD2, a device
  information byte (bit 0 encrypted, bits 5-7 version 2), then objects in ascending id order,
  little-endian. Encrypted: AES-CCM with a 4-byte MIC over the objects, nonce = MAC (6 bytes)
  + UUID D2 FC + device information + counter (4 bytes, little-endian), sent as ciphertext,
  counter, MIC.
- RuuviTag data format 5 / RAWv2 (docs.ruuvi.com, "Data format 5 (RAWv2)"): company 0x0499,
  24 bytes, big-endian.
- Apple iBeacon: company 0x004C, type 0x02, length 0x15, UUID, major and minor (big-endian),
  measured power at 1 m (signed dBm).
"""

from __future__ import annotations

import struct
import uuid as uuid_mod
from collections.abc import Mapping
from typing import Optional

BTHOME_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
RUUVI_COMPANY = 0x0499
APPLE_COMPANY = 0x004C

# BTHome v2 object id -> (quantity, struct format of the raw integer, factor). Only what the
# simulated sensors send; the decoder in drivers/ble has the whole table.
BTHOME_OBJECTS: dict[str, tuple[int, str, float]] = {
    "packet_id": (0x00, "<B", 1),
    "battery": (0x01, "<B", 1),
    "temperature": (0x02, "<h", 0.01),
    "humidity": (0x03, "<H", 0.01),
    "pressure": (0x04, "<I", 0.01),  # uint24: the low three bytes
    "illuminance": (0x05, "<I", 0.01),  # uint24
    "voltage": (0x0C, "<H", 0.001),
    "co2": (0x12, "<H", 1),
}
_UINT24 = ("pressure", "illuminance")


def bthome_v2(
    values: Mapping[str, float],
    *,
    packet_id: Optional[int] = None,
    key: Optional[bytes] = None,
    mac: Optional[str] = None,
    counter: int = 0,
) -> bytes:
    """BTHome v2 service data for these quantities (names of BTHOME_OBJECTS), encrypted when
    a key is given (then mac and counter are needed: they make the nonce)."""
    objects = b""
    items = dict(values)
    if packet_id is not None:
        items["packet_id"] = packet_id
    for name in sorted(items, key=lambda n: BTHOME_OBJECTS[n][0]):
        object_id, fmt, factor = BTHOME_OBJECTS[name]
        raw = struct.pack(fmt, round(items[name] / factor))
        objects += bytes([object_id]) + (raw[:3] if name in _UINT24 else raw)
    if key is None:
        return bytes([0x40]) + objects  # version 2, not encrypted
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    if mac is None:
        raise ValueError("an encrypted BTHome advertisement needs the sensor's MAC address")
    info = 0x41  # version 2, encrypted
    count = struct.pack("<I", counter)
    nonce = bytes.fromhex(mac.replace(":", "")) + b"\xd2\xfc" + bytes([info]) + count
    sealed = AESCCM(key, tag_length=4).encrypt(nonce, objects, None)
    return bytes([info]) + sealed[:-4] + count + sealed[-4:]


def ruuvi_v5(
    *,
    temperature: float,
    humidity: float,
    pressure_hpa: float,
    voltage: float,
    tx_power: int = 4,
    acceleration_mg: tuple[int, int, int] = (0, 0, 1000),
    movements: int = 0,
    sequence: int = 0,
    mac: str = "00:00:00:00:00:00",
) -> bytes:
    """RuuviTag RAWv2 manufacturer data (after the company id)."""
    power = (round(voltage * 1000) - 1600) << 5 | (tx_power + 40) // 2
    return struct.pack(
        ">BhHHhhhHBH6s",
        5,
        round(temperature / 0.005),
        round(humidity / 0.0025),
        round(pressure_hpa * 100) - 50000,
        *acceleration_mg,
        power,
        movements,
        sequence,
        bytes.fromhex(mac.replace(":", "")),
    )


def ibeacon(uuid: str, major: int, minor: int, measured_power: int = -59) -> bytes:
    """iBeacon manufacturer data (after Apple's company id)."""
    return b"\x02\x15" + uuid_mod.UUID(uuid).bytes + struct.pack(">HHb", major, minor,
                                                                  measured_power)  # fmt: skip
