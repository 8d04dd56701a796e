"""What every BLE decoder returns and the errors it may raise.

Kept apart from the decoders so the per-device layer (replay protection, deduplication, rate
limiting) can import the types without importing any format module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Optional

# Bluetooth SIG base UUID: bleak names 16-bit service UUIDs in their full 128-bit form.
_BASE_UUID = "0000{:04x}-0000-1000-8000-00805f9b34fb"

# AES-128 keys (BTHome, pvvx/ATC and MiBeacon v4/v5 bindkeys are all 16 bytes).
KEY_LENGTH = 16

_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")


def uuid16(short: int) -> str:
    """The 128-bit string bleak uses as the service_data key of a 16-bit service UUID."""
    return _BASE_UUID.format(short)


class BLEDecodeError(ValueError):
    """An advertisement of a recognised format is malformed, truncated or out of range.

    `format` names the format that recognised the advertisement ("bthome", "ruuvi_v5", ...).
    """

    def __init__(self, format: str, message: str) -> None:
        super().__init__(f"{format}: {message}")
        self.format = format


class BLEKeyError(BLEDecodeError):
    """An encrypted advertisement could not be decrypted: no key was given, the key has the
    wrong length, the address is not a MAC (the nonce needs it), or the message integrity check
    failed (wrong key, or the advertisement was altered)."""


def mac_bytes(format: str, address: str) -> bytes:
    """The 6 bytes of a MAC address "AA:BB:CC:DD:EE:FF", most significant first."""
    if not _MAC.match(address):
        raise BLEKeyError(
            format, f"address {address!r} is not a MAC; decryption needs it for the nonce"
        )
    return bytes.fromhex(address.replace(":", "").replace("-", ""))


@dataclass(frozen=True)
class DecodedFrame:
    """One advertisement, decoded.

    format      which decoder matched: "bthome", "bthome_v1", "ruuvi_v5", "ruuvi_df6",
                "ruuvi_e1", "atc1441", "pvvx", "xiaomi", "ibeacon", "eddystone_uid",
                "eddystone_url", "eddystone_tlm".
    values      quantity -> value, in the units of docs/ble.md (°C, %RH, hPa, %, V, ...).
    packet_id   a number the device changes when it sends new data, for deduplication (BTHome
                packet id, Ruuvi measurement sequence, ATC/pvvx and MiBeacon frame counter,
                Eddystone TLM advertising count); None when the format has none.
    counter     the encryption counter, part of the nonce, which must increase for replay
                protection (BTHome v1/v2, MiBeacon v4/v5 and pvvx/ATC encrypted formats);
                None for plain ones.
    counter_bits the counter's width: 32 for BTHome and MiBeacon (compare as integers; a
                device that restarts from 0 needs its key re-entered or the layer's state
                reset), 8 for
                pvvx/ATC, whose counter wraps every 256 frames (compare modulo 256: newer
                when (new - old) % 256 is in 1..127). None when there is no counter.
    encrypted   whether the values were decrypted and authenticated with the key. A device
                configured with a key should have its plain advertisements refused by the
                layer above: decode() accepts them, as it cannot know the configuration.
    events      the keys of `values` that are events (a button press), not states: they must
                be delivered each time, never coalesced by "latest value wins".
    trigger_based  the device advertises on events, not at a regular interval (BTHome device
                information bit 2): silence is not staleness.
    """

    format: str
    values: Mapping[str, Any]
    packet_id: Optional[int] = None
    counter: Optional[int] = None
    encrypted: bool = False
    events: frozenset[str] = field(default_factory=frozenset)
    counter_bits: Optional[int] = None
    trigger_based: bool = False

    def __post_init__(self) -> None:
        # Read-only, so one decoded frame can be shared by the layers above without copying.
        if not isinstance(self.values, MappingProxyType):
            object.__setattr__(self, "values", MappingProxyType(dict(self.values)))


# AD types (Bluetooth Assigned Numbers, "Common Data Types") a format can be found in.
SERVICE_DATA_16 = 0x16
MANUFACTURER_DATA = 0xFF

# A decoder takes (address, payload after the UUID or company id, key) and returns a frame,
# None (not its format: someone else's data under the same id) or raises BLEDecodeError.
Decoder = Callable[[str, bytes, Optional[bytes]], Optional[DecodedFrame]]


@dataclass(frozen=True)
class Source:
    """Where a format is found: service data of a 16-bit UUID, or manufacturer data of a
    company id, optionally followed by fixed bytes (iBeacon's 02 15)."""

    ad_type: int  # SERVICE_DATA_16 or MANUFACTURER_DATA
    id: int  # the 16-bit UUID or the company id
    decode: Decoder
    prefix: bytes = b""

    @property
    def pattern(self) -> tuple[int, int, bytes]:
        """The BlueZ advertisement-monitor or-pattern passing this source: (start in the AD
        structure's data, AD type, bytes); ids are little-endian on the air."""
        return (0, self.ad_type, self.id.to_bytes(2, "little") + self.prefix)


@dataclass(frozen=True)
class Family:
    """A decoder family as the config's `format` names it, declared by its format module:
    the scanner's patterns, the config's choices and the decode order all derive from it."""

    name: str
    sources: tuple[Source, ...]
    keyed: bool = False  # may be encrypted with a per-device key
