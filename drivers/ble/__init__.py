"""Decoders for BLE advertisements: pure functions of the bytes, apart from the scanner.

    from drivers.ble import decode
    decode("A4:C1:38:12:34:56", adv)            # -> {"temperature": 21.5, ...} or None
    decode(address, adv, key=bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932"))

`adv` is a bleak AdvertisementData (only its `manufacturer_data` and `service_data` are read,
so bleak itself is not imported here). `decode` returns a mapping of quantity -> value in the
units of docs/ble.md, or None when no supported format is in the advertisement. It raises
only BLEDecodeError (a ValueError): malformed or truncated data of a recognised format, or
BLEKeyError (a BLEDecodeError) for an encrypted advertisement without a usable key.

`decode_frame` is the same decoding returning a DecodedFrame that also carries the packet id,
the encryption counter and the format name, which replay protection and deduplication need;
those live in the per-device layer above, so both functions stay pure.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Optional, Protocol

from drivers.ble import atc_pvvx, bthome, bthome_v1, eddystone, ibeacon, ruuvi, xiaomi
from drivers.ble.frame import (
    KEY_LENGTH,
    MANUFACTURER_DATA,
    SERVICE_DATA_16,
    BLEDecodeError,
    BLEKeyError,
    DecodedFrame,
    Decoder,
    Family,
    uuid16,
)


class Advertisement(Protocol):
    """The part of bleak's AdvertisementData the decoders read."""

    @property
    def manufacturer_data(self) -> Mapping[int, bytes]: ...

    @property
    def service_data(self) -> Mapping[str, bytes]: ...


# Every decoder family, each declared by its own module (its sources, hence its scan patterns,
# and whether it may be encrypted). Within service data and within manufacturer data they are
# tried in this order; the first that recognises its data wins. Service data first: a firmware
# that sends a service data format may also send manufacturer data we do not decode.
FAMILIES: tuple[Family, ...] = (
    bthome.FAMILY,
    bthome_v1.FAMILY,
    atc_pvvx.FAMILY,
    xiaomi.FAMILY,
    eddystone.FAMILY,
    ruuvi.FAMILY,
    ibeacon.FAMILY,
)

_SERVICE_DECODERS: tuple[tuple[str, str, Decoder], ...] = tuple(
    (f.name, uuid16(s.id), s.decode)
    for f in FAMILIES
    for s in f.sources
    if s.ad_type == SERVICE_DATA_16
)
_MANUFACTURER_DECODERS: tuple[tuple[str, int, Decoder], ...] = tuple(
    (f.name, s.id, s.decode) for f in FAMILIES for s in f.sources if s.ad_type == MANUFACTURER_DATA
)

# Decoder families accepted by `formats=` (the config's `format` key offers the same). A
# family may return several frame formats: "eddystone" gives "eddystone_uid", "_url", "_tlm";
# "atc_pvvx" gives "atc1441" or "pvvx"; "ruuvi" gives "ruuvi_v5", "ruuvi_df6", "ruuvi_e1".
FORMATS: tuple[str, ...] = tuple(f.name for f in FAMILIES)
# Families whose advertisements may be encrypted with a per-device key.
KEYED_FORMATS: tuple[str, ...] = tuple(f.name for f in FAMILIES if f.keyed)
# BlueZ advertisement-monitor or-patterns per family, for passive scanning.
PATTERNS: dict[str, tuple[tuple[int, int, bytes], ...]] = {
    f.name: tuple(s.pattern for s in f.sources) for f in FAMILIES
}


def decode_frame(
    address: str,
    adv: Advertisement,
    key: Optional[bytes] = None,
    *,
    formats: Optional[Collection[str]] = None,
) -> Optional[DecodedFrame]:
    """Decode the first supported format in `adv`, or None when none is there.

    `formats` restricts the decoder families tried (names from FORMATS); None tries them all.
    Raises BLEDecodeError (BLEKeyError for a missing or wrong key), never anything else.
    """
    if key is not None and len(key) != KEY_LENGTH:
        raise BLEKeyError("key", f"must be {KEY_LENGTH} bytes, got {len(key)}")
    service_data = adv.service_data
    for name, uuid, service_decoder in _SERVICE_DECODERS:
        payload = service_data.get(uuid)
        if payload is not None and (formats is None or name in formats):
            frame = service_decoder(address, bytes(payload), key)
            if frame is not None:
                return frame
    manufacturer_data = adv.manufacturer_data
    for name, company, manufacturer_decoder in _MANUFACTURER_DECODERS:
        payload = manufacturer_data.get(company)
        if payload is not None and (formats is None or name in formats):
            frame = manufacturer_decoder(address, bytes(payload), key)
            if frame is not None:
                return frame
    return None


def decode(
    address: str, adv: Advertisement, key: Optional[bytes] = None
) -> Optional[Mapping[str, Any]]:
    """Quantity -> value for the first supported format in `adv`, or None.

    Raises BLEDecodeError (BLEKeyError for an encrypted advertisement without a usable key).
    """
    frame = decode_frame(address, adv, key)
    return None if frame is None else dict(frame.values)


__all__ = [
    "FAMILIES", "FORMATS", "KEYED_FORMATS", "KEY_LENGTH", "PATTERNS", "Advertisement",
    "BLEDecodeError", "BLEKeyError", "DecodedFrame", "decode", "decode_frame", "uuid16",
]  # fmt: skip
