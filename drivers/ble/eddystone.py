"""Google Eddystone: service data of UUID 0xFEAA (github.com/google/eddystone, protocol
specification and the eddystone-uid, eddystone-url and eddystone-tlm/tlm-plain documents).

The frame type is the first byte: 0x00 UID, 0x10 URL, 0x20 TLM. Encrypted TLM (version 1)
and EID (0x30) need the beacon's identity key and are not decoded: None, as for any other
frame type.
"""

from __future__ import annotations

import struct
from typing import Any, Optional

from drivers.ble.frame import SERVICE_DATA_16, BLEDecodeError, DecodedFrame, Family, Source

UUID16 = 0xFEAA
UID = "eddystone_uid"
URL = "eddystone_url"
TLM = "eddystone_tlm"

_UID_FRAME = 0x00
_URL_FRAME = 0x10
_TLM_FRAME = 0x20

# UID: type, Tx power at 0 m (int8), namespace (10), instance (6), 2 reserved bytes that
# "existing implementations" omit (eddystone-uid: service data length 0x15 instead of 0x17).
_UID_LENGTHS = (18, 20)

# eddystone-url: scheme prefixes and the expansion codes 0x00-0x0d; 0x0e-0x20 and
# 0x7f-0xff are reserved, so a URL holding them is malformed. At most 17 encoded bytes.
_SCHEMES = ("http://www.", "https://www.", "http://", "https://")
_EXPANSIONS = (
    ".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
    ".com", ".org", ".edu", ".net", ".info", ".biz", ".gov",
)  # fmt: skip
_URL_MAX = 17

# tlm-plain: type, version 0, VBATT uint16 mV (0 = not supported), temperature 8.8 signed
# fixed point (0x8000 = not supported), ADV_CNT uint32, SEC_CNT uint32 in 0.1 s; big-endian.
_TLM = struct.Struct(">BBHhII")
_TLM_PLAIN = 0x00
_TLM_ENCRYPTED = 0x01
_TEMP_NA = -0x8000


def decode(data: bytes) -> Optional[DecodedFrame]:
    if not data:
        return None
    frame_type = data[0]
    if frame_type == _UID_FRAME:
        return _uid(data)
    if frame_type == _URL_FRAME:
        return _url(data)
    if frame_type == _TLM_FRAME:
        return _tlm(data)
    return None


def _uid(data: bytes) -> DecodedFrame:
    if len(data) not in _UID_LENGTHS:
        raise BLEDecodeError(UID, f"frame is {len(data)} bytes, UID has 20 (18 without RFU)")
    values: dict[str, Any] = {
        "namespace": data[2:12].hex(),
        "instance": data[12:18].hex(),
        "tx_power": int.from_bytes(data[1:2], "big", signed=True),
    }
    return DecodedFrame(UID, values)


def _url(data: bytes) -> DecodedFrame:
    if len(data) < 3:
        raise BLEDecodeError(URL, f"frame is {len(data)} bytes, URL has at least 3")
    encoded = data[3:]
    if len(encoded) > _URL_MAX:
        raise BLEDecodeError(URL, f"encoded URL is {len(encoded)} bytes, at most {_URL_MAX}")
    scheme = data[2]
    if scheme >= len(_SCHEMES):
        raise BLEDecodeError(URL, f"URL scheme prefix 0x{scheme:02x} is reserved")
    parts = [_SCHEMES[scheme]]
    for code in encoded:
        if code < len(_EXPANSIONS):
            parts.append(_EXPANSIONS[code])
        elif 0x20 < code < 0x7F:
            parts.append(chr(code))
        else:
            raise BLEDecodeError(URL, f"URL byte 0x{code:02x} is reserved")
    values: dict[str, Any] = {
        "url": "".join(parts),
        "tx_power": int.from_bytes(data[1:2], "big", signed=True),
    }
    return DecodedFrame(URL, values)


def _tlm(data: bytes) -> Optional[DecodedFrame]:
    if len(data) >= 2 and data[1] == _TLM_ENCRYPTED:
        return None
    if len(data) != _TLM.size:
        raise BLEDecodeError(TLM, f"frame is {len(data)} bytes, TLM has {_TLM.size}")
    _, version, battery_mv, temp, adv_count, sec_count = _TLM.unpack(data)
    if version != _TLM_PLAIN:
        raise BLEDecodeError(TLM, f"TLM version 0x{version:02x} is not 0 (plain) or 1")
    values: dict[str, Any] = {}
    if battery_mv:
        values["voltage"] = battery_mv / 1000
    if temp != _TEMP_NA:
        values["temperature"] = temp / 256
    values["adv_count"] = adv_count
    values["uptime"] = sec_count / 10
    # The advertising count changes with every frame the beacon sends: it tells a repeated
    # report of one frame (BlueZ delivers duplicates) from a new one.
    return DecodedFrame(TLM, values, packet_id=adv_count)


FAMILY = Family("eddystone", (Source(SERVICE_DATA_16, UUID16, lambda _a, data, _k: decode(data)),))
