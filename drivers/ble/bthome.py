"""BTHome v2: service data of UUID 0xFCD2 (bthome.io "BTHome v2 format" and "Encryption").

Service data = device information byte, then objects (id, value), or, when bit 0 of the
device information is set, AES-CCM ciphertext of the objects, a 4-byte counter (little-endian)
and a 4-byte MIC. The nonce is the device MAC (as written, most significant byte first), the
UUID as sent (D2 FC), the device information byte and the counter bytes.

Bit 1 of the device information, "reserved" on the spec page, is read as the reference
parser bthome-ble reads it: the device's MAC follows (6 bytes, least significant first) and
is the one in the nonce; devices behind a random or changing address send it.

Choices the spec leaves to the receiver, made here and documented in docs/ble.md:
- an unknown object id stops parsing and the objects before it are returned, as bthome.io
  prescribes ("a receiver will stop parsing object ids as soon as it finds an object id that
  isn't supported"): its length is unknown, so nothing after it can be read;
- an object cut short by the end of the data is malformed: BLEDecodeError;
- object ids out of numerical order are accepted (the spec asks senders for order, so that
  old receivers stop late rather than early; it does not change how an object reads);
- a known event object with an event id we do not know is skipped (its length is known),
  so a new event type in a later spec revision does not lose the measurements; the same
  for a command (0x3B) with an opcode we do not know (its length byte says how long it is);
- repeated objects of one name are numbered in order, "temperature", "temperature_2", ...,
  as bthome.io says; objects with different ids but the same name (0x02 and 0x45 are both
  temperature) share the numbering.
"""

from __future__ import annotations

from typing import Any, Optional

from drivers.ble import ccm
from drivers.ble.bthome_objects import (
    BUTTON_EVENTS,
    COMMAND_LENGTH_MASK,
    COMMAND_OPCODES,
    DIMMER_EVENTS,
    OBJECTS,
    STEPPED_COMMANDS,
    Kind,
)
from drivers.ble.frame import (
    SERVICE_DATA_16,
    BLEDecodeError,
    DecodedFrame,
    Family,
    Source,
    mac_bytes,
)

FORMAT = "bthome"
UUID16 = 0xFCD2
_UUID_AS_SENT = UUID16.to_bytes(2, "little")

_ENCRYPTED = 0x01
_MAC_INCLUDED = 0x02
_TRIGGER_BASED = 0x04
_VERSION_SHIFT = 5
_COUNTER_LENGTH = 4


def decode(address: str, data: bytes, key: Optional[bytes]) -> DecodedFrame:
    """Decode BTHome v2 service data (without the UUID); raises BLEDecodeError."""
    if not data:
        raise BLEDecodeError(
            FORMAT, "service data is empty, the device information byte is missing"
        )
    info = data[0]
    version = info >> _VERSION_SHIFT
    if version != 2:
        raise BLEDecodeError(
            FORMAT, f"device information 0x{info:02x} says version {version}, not 2"
        )
    counter = None
    payload = data[1:]
    mac = None
    if info & _MAC_INCLUDED:
        if len(payload) < 6:
            raise BLEDecodeError(FORMAT, "device information says a MAC follows; it is cut short")
        mac = payload[5::-1]  # sent least significant byte first
        payload = payload[6:]
    encrypted = bool(info & _ENCRYPTED)
    if encrypted:
        if len(payload) < _COUNTER_LENGTH + ccm.MIC_LENGTH:
            raise BLEDecodeError(
                FORMAT, f"encrypted payload is {len(payload)} bytes, shorter than counter and MIC"
            )
        counter_bytes = payload[-8:-4]
        counter = int.from_bytes(counter_bytes, "little")
        if mac is None:
            mac = mac_bytes(FORMAT, address)
        nonce = mac + _UUID_AS_SENT + data[:1] + counter_bytes
        payload = ccm.decrypt(FORMAT, key, nonce, payload[:-8], payload[-4:])
    values, events, packet_id = _objects(payload)
    return DecodedFrame(
        FORMAT,
        values,
        packet_id=packet_id,
        counter=counter,
        encrypted=encrypted,
        events=frozenset(events),
        counter_bits=32 if encrypted else None,
        trigger_based=bool(info & _TRIGGER_BASED),
    )


def _objects(payload: bytes) -> tuple[dict[str, Any], list[str], Optional[int]]:
    values: dict[str, Any] = {}
    events: list[str] = []
    seen: dict[str, int] = {}
    packet_id: Optional[int] = None
    pos = 0
    end = len(payload)
    while pos < end:
        object_id = payload[pos]
        spec = OBJECTS.get(object_id)
        if spec is None:
            break
        pos += 1
        size = spec.size
        if spec.kind is Kind.TEXT or spec.kind is Kind.RAW:
            if pos >= end:
                raise BLEDecodeError(FORMAT, f"object 0x{object_id:02x} has no length byte")
            size = payload[pos]
            pos += 1
        elif spec.kind is Kind.COMMAND:
            if pos >= end:
                raise BLEDecodeError(FORMAT, f"object 0x{object_id:02x} has no length byte")
            size = 1 + (payload[pos] & COMMAND_LENGTH_MASK)  # the opcode, then arguments
            pos += 1
        if pos + size > end:
            raise BLEDecodeError(
                FORMAT,
                f"object 0x{object_id:02x} ({spec.name}) needs {size} bytes, {end - pos} left",
            )
        raw = payload[pos : pos + size]
        pos += size
        if spec.kind is Kind.PACKET_ID:
            if packet_id is None:
                packet_id = raw[0]
            continue
        count = seen.get(spec.name, 0) + 1
        seen[spec.name] = count
        name = spec.name if count == 1 else f"{spec.name}_{count}"
        kind = spec.kind
        if kind is Kind.NUMBER:
            number = int.from_bytes(raw, "little", signed=spec.signed)
            values[name] = round(number * spec.factor, spec.decimals)
        elif kind is Kind.BINARY:
            values[name] = raw[0] != 0
        elif kind is Kind.INTEGER:
            values[name] = int.from_bytes(raw, "little", signed=spec.signed)
        elif kind is Kind.BUTTON:
            event = BUTTON_EVENTS.get(raw[0])
            if event is not None:
                values[name] = event
                events.append(name)
        elif kind is Kind.DIMMER:
            event = DIMMER_EVENTS.get(raw[0])
            if event is not None:
                values[name] = event
                values[f"{name}_steps"] = raw[1]
                events.extend((name, f"{name}_steps"))
        elif kind is Kind.COMMAND:
            command = COMMAND_OPCODES.get(raw[0])
            if command is not None:
                values[name] = command
                events.append(name)
                if raw[0] in STEPPED_COMMANDS and len(raw) == 2:
                    values[f"{name}_steps"] = raw[1]
                    events.append(f"{name}_steps")
        elif kind is Kind.FIRMWARE:
            # Sent least significant part first: F1 00 01 02 04 is version 4.2.1.0.
            values[name] = ".".join(str(b) for b in reversed(raw))
        elif kind is Kind.TEXT:
            try:
                values[name] = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise BLEDecodeError(FORMAT, f"text object is not UTF-8: {e}") from None
        else:  # Kind.RAW
            values[name] = raw.hex()
    return values, events, packet_id


FAMILY = Family("bthome", (Source(SERVICE_DATA_16, UUID16, decode),), keyed=True)
