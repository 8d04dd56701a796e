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
- Ruuvi Air data format E1 (docs.ruuvi.com, "Data format E1"): company 0x0499, 40 bytes,
  big-endian, reserved bytes FF. Checked in tests/test_ble_sim_frames.py.
- Xiaomi MiBeacon (Mi IoT "MiBeacon", as xiaomi-ble reads it): service data 0xFE95, frame
  control, product id, frame counter, MAC (least significant byte first), objects; version 5
  encrypted: AES-CCM over the objects, nonce = MAC reversed + product id + frame counter + 3-byte
  extended counter, additional data 0x11. Checked in tests/test_ble_sim_frames.py against
  captures of a LYWSD03MMC.
"""

from __future__ import annotations

import struct
import uuid as uuid_mod
from collections.abc import Mapping
from typing import Optional

from drivers.ble import bthome, ruuvi, uuid16, xiaomi
from drivers.ble.ibeacon import APPLE

# The ids each format module declares (drivers/ble), as bleak keys the data.
BTHOME_UUID = uuid16(bthome.UUID16)
RUUVI_COMPANY = ruuvi.RUUVI
APPLE_COMPANY = APPLE
XIAOMI_UUID = uuid16(xiaomi.UUID16)

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


def ruuvi_e1(
    *,
    temperature: float,
    humidity: float,
    pressure_hpa: float,
    pm: tuple[float, float, float, float],
    co2: float,
    voc_index: int,
    nox_index: int,
    illuminance: float,
    sequence: int,
    calibrating: bool = False,
    mac: str = "00:00:00:00:00:00",
) -> bytes:
    """Ruuvi Air E1 manufacturer data (after the company id); pm is PM1.0, 2.5, 4.0, 10."""
    # The indexes are 9 bits: the upper 8 in their bytes, the lowest in flags bits 6 and 7.
    flags = (voc_index & 1) << 6 | (nox_index & 1) << 7 | int(calibrating)
    return (
        struct.pack(
            ">BhHH4HHBB",
            0xE1,
            round(temperature / 0.005),
            round(humidity / 0.0025),
            round(pressure_hpa * 100) - 50000,
            *(round(p * 10) for p in pm),
            round(co2),
            voc_index >> 1,
            nox_index >> 1,
        )
        + round(illuminance * 100).to_bytes(3, "big")
        + b"\xff" * 3
        + sequence.to_bytes(3, "big")
        + bytes([flags])
        + b"\xff" * 5
        + bytes.fromhex(mac.replace(":", ""))
    )


# MiBeacon objects the simulated thermometer sends: id, struct format, factor.
_MIBEACON_OBJECTS: dict[str, tuple[int, str, float]] = {
    "temperature": (0x1004, "<h", 0.1),
    "humidity": (0x1006, "<H", 0.1),
    "battery": (0x100A, "<B", 1),
}
_MIBEACON_PLAIN = 0x3050  # version 3, objects included, MAC included
_MIBEACON_ENCRYPTED = 0x5858  # version 5, objects, MAC, encrypted


def mibeacon(
    values: Mapping[str, float],
    *,
    product_id: int,
    frame_counter: int,
    mac: str,
    key: Optional[bytes] = None,
    ext_counter: int = 0,
) -> bytes:
    """MiBeacon service data (after the UUID) for temperature, humidity and/or battery; both
    temperature and humidity go in one 0x100D object, as the LYWSDCGQ sends them."""
    objects = b""
    if "temperature" in values and "humidity" in values:
        raw = struct.pack("<hH", round(values["temperature"] * 10), round(values["humidity"] * 10))
        objects += struct.pack("<HB", 0x100D, len(raw)) + raw
    for name, (object_id, fmt, factor) in _MIBEACON_OBJECTS.items():
        if name in values and not (name != "battery" and "humidity" in values
                                   and "temperature" in values):  # fmt: skip
            raw = struct.pack(fmt, round(values[name] / factor))
            objects += struct.pack("<HB", object_id, len(raw)) + raw
    mac_lsb_first = bytes.fromhex(mac.replace(":", ""))[::-1]
    control = _MIBEACON_PLAIN if key is None else _MIBEACON_ENCRYPTED
    head = struct.pack("<HHB", control, product_id, frame_counter & 0xFF) + mac_lsb_first
    if key is None:
        return head + objects
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    ext = ext_counter.to_bytes(3, "little")
    nonce = mac_lsb_first + head[2:5] + ext
    sealed = AESCCM(key, tag_length=4).encrypt(nonce, objects, b"\x11")
    return head + sealed[:-4] + ext + sealed[-4:]
