"""Build bleak's real AdvertisementData for decoder tests.

bleak 1.x (Python 3.9) and 3.x have the same NamedTuple fields today; building it from
`_fields` keeps the helper working should a later bleak add one (it gets its default or None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional, Union

from bleak.backends.scanner import AdvertisementData

from drivers.ble import uuid16


def make_adv(
    *,
    manufacturer_data: Optional[Mapping[int, bytes]] = None,
    service_data: Optional[Mapping[Union[int, str], bytes]] = None,
    local_name: Optional[str] = None,
    rssi: int = -60,
) -> AdvertisementData:
    """service_data keys may be 16-bit UUIDs as ints (0xFCD2) or bleak's 128-bit strings."""
    services = {
        (uuid16(k) if isinstance(k, int) else k): bytes(v) for k, v in (service_data or {}).items()
    }
    known = {
        "local_name": local_name,
        "manufacturer_data": dict(manufacturer_data or {}),
        "service_data": services,
        "service_uuids": list(services),
        "tx_power": None,
        "rssi": rssi,
        "platform_data": (),
    }
    return AdvertisementData(**{f: known.get(f) for f in AdvertisementData._fields})
