"""BTHome v1 (legacy): service data of UUID 0x181C (plain) or 0x181E (encrypted).

Layout: bthome.io "BTHome v1" page (home-assistant/bthome.io src/v1.html, commit 0cf388b,
2026-04-30) and the reference parser bthome-ble (parser.py, encryption in
bthome_v1_encryption.py, 3.20.0). Each object is a control byte (bits 0-4: the length of
what follows it; bits 5-7: the value's format, 0 uint, 1 int, 2 float, 3 string, 4 MAC), the
object id, then the value, little-endian. Object ids, names and factors are v2's
(drivers/ble/bthome_objects.py), which kept v1's; the value's size comes from the control
byte, not from the table.

Encrypted (0x181E): AES-CCM ciphertext of the objects, a 4-byte counter (little-endian) and a
4-byte MIC; the nonce is the device MAC (most significant byte first), the UUID as sent
(1E 18) and the counter bytes; the additional data is one byte 0x11.

Unlike v2, every object says its length, so an object id or format we do not read is skipped
and the objects after it still count. A length of 0 or 1 (no value), or an object cut short,
is malformed: BLEDecodeError.
"""

from __future__ import annotations

import struct
from typing import Any, Optional

from drivers.ble import ccm
from drivers.ble.bthome_objects import BUTTON_EVENTS, DIMMER_EVENTS, OBJECTS, Kind
from drivers.ble.frame import (
    SERVICE_DATA_16,
    BLEDecodeError,
    DecodedFrame,
    Family,
    Source,
    mac_bytes,
)

FORMAT = "bthome_v1"
UUID16_PLAIN = 0x181C
UUID16_ENCRYPTED = 0x181E
_UUID_AS_SENT = UUID16_ENCRYPTED.to_bytes(2, "little")
_AAD = b"\x11"
_COUNTER_LENGTH = 4

_UINT, _INT, _FLOAT, _STRING, _MAC = range(5)
_FLOATS = {2: struct.Struct("<e"), 4: struct.Struct("<f"), 8: struct.Struct("<d")}
# Kinds v1 defines (sensors, binary sensors, events, packet id, text and raw).
_V1_KINDS = frozenset({Kind.NUMBER, Kind.INTEGER, Kind.BINARY, Kind.BUTTON, Kind.DIMMER,
                       Kind.TEXT, Kind.RAW, Kind.PACKET_ID})  # fmt: skip


def decode_plain(address: str, data: bytes, key: Optional[bytes]) -> DecodedFrame:
    values, events, packet_id = _objects(data)
    return DecodedFrame(FORMAT, values, packet_id=packet_id, events=frozenset(events))


def decode_encrypted(address: str, data: bytes, key: Optional[bytes]) -> DecodedFrame:
    if len(data) < _COUNTER_LENGTH + ccm.MIC_LENGTH + 1:
        raise BLEDecodeError(
            FORMAT, f"encrypted payload is {len(data)} bytes, too short for counter and MIC"
        )
    counter_bytes = data[-8:-4]
    nonce = mac_bytes(FORMAT, address) + _UUID_AS_SENT + counter_bytes
    plain = ccm.decrypt(FORMAT, key, nonce, data[:-8], data[-4:], _AAD)
    values, events, packet_id = _objects(plain)
    return DecodedFrame(
        FORMAT,
        values,
        packet_id=packet_id,
        counter=int.from_bytes(counter_bytes, "little"),
        encrypted=True,
        events=frozenset(events),
        counter_bits=32,
    )


def _objects(payload: bytes) -> tuple[dict[str, Any], list[str], Optional[int]]:
    values: dict[str, Any] = {}
    events: list[str] = []
    seen: dict[str, int] = {}
    packet_id: Optional[int] = None
    pos, end = 0, len(payload)
    while pos < end:
        control = payload[pos]
        length, value_format = control & 0x1F, control >> 5
        if length < 2:
            raise BLEDecodeError(FORMAT, f"object at byte {pos} has length {length}, no value")
        if pos + 1 + length > end:
            raise BLEDecodeError(FORMAT, f"object at byte {pos} needs {length} bytes, "
                                 f"{end - pos - 1} left")  # fmt: skip
        object_id = payload[pos + 1]
        raw = payload[pos + 2 : pos + 1 + length]
        pos += 1 + length
        spec = OBJECTS.get(object_id)
        if spec is None or spec.kind not in _V1_KINDS or value_format == _MAC:
            continue  # its length is known: skip it, read on
        if spec.kind is Kind.PACKET_ID:
            if packet_id is None:
                packet_id = raw[0]
            continue
        value = _value(spec.kind, value_format, raw, spec.factor, spec.decimals, object_id)
        count = seen.get(spec.name, 0) + 1
        seen[spec.name] = count
        if value is None:  # event 0x00 ("none") or unknown: nothing, but it keeps the numbering
            continue
        name = spec.name if count == 1 else f"{spec.name}_{count}"
        if spec.kind is Kind.DIMMER:
            event, steps = value
            values[name], values[f"{name}_steps"] = event, steps
            events.extend((name, f"{name}_steps"))
            continue
        values[name] = value
        if spec.kind is Kind.BUTTON:
            events.append(name)
    return values, events, packet_id


def _value(kind: Kind, value_format: int, raw: bytes, factor: float, decimals: int,
           object_id: int) -> Any:  # fmt: skip
    """The value of one object, or None for an event id we do not know."""
    if kind is Kind.TEXT:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BLEDecodeError(FORMAT, f"text object is not UTF-8: {e}") from None
    if kind is Kind.RAW:
        return raw.hex()
    if kind is Kind.BINARY:
        return raw[0] != 0
    if kind is Kind.BUTTON:
        return BUTTON_EVENTS.get(raw[0])
    if kind is Kind.DIMMER:
        if len(raw) != 2:
            raise BLEDecodeError(FORMAT, f"dimmer object has {len(raw)} bytes, not 2")
        event = DIMMER_EVENTS.get(raw[0])
        return None if event is None else (event, raw[1])
    if value_format == _FLOAT:
        layout = _FLOATS.get(len(raw))
        if layout is None:
            raise BLEDecodeError(FORMAT, f"object 0x{object_id:02x}: a float of {len(raw)} "
                                 "bytes (2, 4 or 8)")  # fmt: skip
        number: float = layout.unpack(raw)[0]
    elif value_format in (_UINT, _INT):
        number = int.from_bytes(raw, "little", signed=value_format == _INT)
    else:
        raise BLEDecodeError(FORMAT, f"object 0x{object_id:02x} has format {value_format}, "
                             "not a number")  # fmt: skip
    if kind is Kind.INTEGER:
        return int(number)
    return round(number * factor, decimals)


FAMILY = Family(
    "bthome_v1",
    (
        Source(SERVICE_DATA_16, UUID16_PLAIN, decode_plain),
        Source(SERVICE_DATA_16, UUID16_ENCRYPTED, decode_encrypted),
    ),
    keyed=True,
)
