"""Apple iBeacon: manufacturer data of company 0x004C, type 0x02, length 0x15.

Layout (Apple, "Proximity Beacon Specification", Release R1, "Beacon advertising
packet"): after the company id, which bleak strips into the dictionary key,
type 0x02, length 0x15 (21), a 16-byte proximity UUID, major and minor as big-endian uint16,
and the measured power (RSSI at 1 m) as an int8.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any, Optional

from drivers.ble.frame import MANUFACTURER_DATA, BLEDecodeError, DecodedFrame, Family, Source

FORMAT = "ibeacon"
APPLE = 0x004C
_TYPE_LENGTH = b"\x02\x15"
_LAYOUT = struct.Struct(">16sHHb")


def decode(manufacturer_data: bytes) -> Optional[DecodedFrame]:
    """None when this Apple manufacturer data is not an iBeacon (Apple sends many others)."""
    if not manufacturer_data.startswith(_TYPE_LENGTH):
        return None
    body = manufacturer_data[2:]
    if len(body) < _LAYOUT.size:
        raise BLEDecodeError(FORMAT, f"payload is {len(body)} bytes, the layout has 21")
    # Bytes after the 21 the length byte announces are outside the structure (some beacons
    # append a battery byte there): ignored, as any AD structure reader would.
    raw_uuid, major, minor, tx_power = _LAYOUT.unpack_from(body)
    values: dict[str, Any] = {
        "uuid": str(uuid.UUID(bytes=raw_uuid)),
        "major": major,
        "minor": minor,
        "tx_power": tx_power,
    }
    return DecodedFrame(FORMAT, values)


FAMILY = Family(
    "ibeacon",
    (Source(MANUFACTURER_DATA, APPLE, lambda _a, data, _k: decode(data), prefix=_TYPE_LENGTH),),
)
