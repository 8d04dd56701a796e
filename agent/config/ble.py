"""The [ble] section of a node's config: the scanner, [[ble.devices]] and [[ble.presence]].

Each table's keys are the fields of a frozen dataclass below, parsed by the same record parser
as the room-control sections, so errors read like the rest of the config's:
``room.toml: ble.devices[0].key: must be 32 hex digits (16 bytes), got 30``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any, Callable, Optional

from agent.config.control import RecordError, parse_record, parse_records

MAC_RE = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ADAPTER_RE = re.compile(r"^hci[0-9]{1,3}$")
SCANNING_MODES = ("auto", "passive", "active")


def formats() -> tuple[str, ...]:
    """The decoder families of drivers.ble, as their format modules declare them, and "auto"
    for all of them. Imported here, not at the top, so a node without BLE loads no decoder."""
    from drivers.ble import FORMATS

    return ("auto", *FORMATS)


def keyed_formats() -> tuple[str, ...]:
    """The formats that can be encrypted with a per-device key, and "auto"."""
    from drivers.ble import KEYED_FORMATS

    return ("auto", *KEYED_FORMATS)


def __getattr__(name: str) -> Any:
    # FORMATS and KEYED_FORMATS read as constants, computed on first use (PEP 562).
    if name == "FORMATS":
        return formats()
    if name == "KEYED_FORMATS":
        return keyed_formats()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def normal_mac(value: str) -> str:
    """AA:BB:CC:DD:EE:FF in capitals (what BlueZ reports), or ValueError."""
    mac = value.strip().upper().replace("-", ":")
    if not MAC_RE.match(mac):
        raise ValueError(f"must be a MAC address like A4:C1:38:12:34:56, got {value!r}")
    return mac


def _positive(field: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{field}: must be more than 0, got {value:g}")


@dataclasses.dataclass(frozen=True)
class BleDeviceConfig:
    """One BLE sensor, known by its MAC address."""

    name: str
    address: str
    interval: float = 60.0  # s: at most one reading per interval goes downstream
    format: str = "auto"
    key: Optional[str] = None  # 32 hex digits: the AES key of an encrypted sensor
    # s without a decodable advertisement before the device is marked unavailable;
    # 0 picks max(600, 3 × interval).
    unavailable_after: float = 0.0
    # What Home Assistant is told the device measures; () learns it from the advertisements.
    quantities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field in ("name", "address", "format"):
            if not isinstance(getattr(self, field), str):
                raise ValueError(f"{field}: must be a string")
        try:
            object.__setattr__(self, "address", normal_mac(self.address))
        except ValueError as e:
            raise ValueError(f"address: {e}") from None
        if not 1 <= self.interval <= 86400:
            raise ValueError(f"interval: must be 1..86400 s, got {self.interval:g}")
        if self.format not in formats():
            raise ValueError(f"format: must be one of {', '.join(formats())}, got {self.format!r}")
        if self.key is not None:
            if not isinstance(self.key, str):
                raise ValueError(f"key: must be a string of 32 hex digits, got {self.key!r}")
            if self.format not in keyed_formats():
                raise ValueError(f"key: format {self.format!r} is never encrypted")
            if not re.fullmatch(r"[0-9A-Fa-f]{32}", self.key):
                raise ValueError(
                    f"key: must be 32 hex digits (16 bytes), got {len(self.key)} characters"
                )
        if self.unavailable_after == 0:
            object.__setattr__(self, "unavailable_after", max(600.0, 3 * self.interval))
        if not self.interval <= self.unavailable_after <= 7 * 86400:
            raise ValueError(
                f"unavailable_after: must be {self.interval:g} s (the interval) .. 7 days, "
                f"got {self.unavailable_after:g}"
            )
        if isinstance(self.quantities, str) or not all(isinstance(q, str) for q in self.quantities):
            raise ValueError(
                f"quantities: must be a list of quantity names, got {self.quantities!r}"
            )
        object.__setattr__(self, "quantities", tuple(self.quantities))

    @property
    def key_bytes(self) -> Optional[bytes]:
        return bytes.fromhex(self.key) if self.key is not None else None


@dataclasses.dataclass(frozen=True)
class BeaconConfig:
    """A beacon that counts as a person: a badge by its MAC address, or an iBeacon (a phone's
    address changes every few minutes, its iBeacon identity does not) by UUID, and optionally
    major and minor."""

    address: Optional[str] = None
    uuid: Optional[str] = None
    major: Optional[int] = None
    minor: Optional[int] = None

    def __post_init__(self) -> None:
        if (self.address is None) == (self.uuid is None):
            raise ValueError("address: give a beacon's address or its iBeacon uuid (one of them)")
        for field in ("address", "uuid"):
            if getattr(self, field) is not None and not isinstance(getattr(self, field), str):
                raise ValueError(f"{field}: must be a string, got {getattr(self, field)!r}")
        if self.address is not None:
            try:
                object.__setattr__(self, "address", normal_mac(self.address))
            except ValueError as e:
                raise ValueError(f"address: {e}") from None
            if self.major is not None or self.minor is not None:
                raise ValueError("major: only for a beacon given by its iBeacon uuid")
        if self.uuid is not None:
            uuid = self.uuid.lower()
            if not UUID_RE.match(uuid):
                raise ValueError(
                    f"uuid: must be a UUID like 2f234454-cf6d-4a0f-adf2-f4911ba9ffa6, "
                    f"got {self.uuid!r}"
                )
            object.__setattr__(self, "uuid", uuid)
        for field in ("major", "minor"):
            value = getattr(self, field)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF
            ):
                raise ValueError(f"{field}: must be 0..65535, got {value}")
        if self.minor is not None and self.major is None:
            raise ValueError("minor: needs major too")

    def describe(self) -> str:
        if self.address is not None:
            return self.address
        return ":".join(str(p) for p in (self.uuid, self.major, self.minor) if p is not None)


@dataclasses.dataclass(frozen=True)
class PresenceConfig:
    """Counts the configured beacons heard in the room: `occupancy` is how many were received
    at rssi_min or stronger within the last `window` seconds."""

    name: str
    beacons: tuple[BeaconConfig, ...]
    window: float = 120.0  # s
    rssi_min: int = -80  # dBm: weaker is taken to be outside the room
    interval: float = 30.0  # s between occupancy readings (and at once when it changes)

    def __post_init__(self) -> None:
        if not self.beacons:
            raise ValueError("beacons: a presence group needs at least one beacon")
        _positive("window", self.window)
        if not 1 <= self.interval <= 86400:
            raise ValueError(f"interval: must be 1..86400 s, got {self.interval:g}")
        if not -127 <= self.rssi_min <= 20:
            raise ValueError(f"rssi_min: must be -127..20 dBm, got {self.rssi_min}")
        seen: dict[str, int] = {}
        for i, beacon in enumerate(self.beacons):
            if beacon.describe() in seen:
                raise ValueError(f"beacons: {beacon.describe()} is listed twice "
                                 f"([{seen[beacon.describe()]}] and [{i}])")  # fmt: skip
            seen[beacon.describe()] = i


@dataclasses.dataclass(frozen=True)
class BleConfig:
    adapter: Optional[str] = None  # "hci0"; None: the system's default adapter
    scanning_mode: str = "auto"  # auto: passive where BlueZ supports it, else active
    # s without any advertisement before the scan is restarted; 0: never (errors still are).
    stall_timeout: float = 300.0
    restart_backoff_max: float = 300.0  # s: the wait between failed restarts doubles up to this
    # Failed restarts in a row before the adapter is power-cycled; 0: never.
    reset_after: int = 3
    devices: tuple[BleDeviceConfig, ...] = ()
    presence: tuple[PresenceConfig, ...] = ()

    def __post_init__(self) -> None:
        if self.adapter is not None and not (
            isinstance(self.adapter, str) and ADAPTER_RE.match(self.adapter)
        ):
            raise ValueError(f"adapter: must be an adapter name like 'hci0', got {self.adapter!r}")
        if self.scanning_mode not in SCANNING_MODES:
            raise ValueError(
                f"scanning_mode: must be one of {', '.join(SCANNING_MODES)}, "
                f"got {self.scanning_mode!r}"
            )
        if self.stall_timeout != 0 and not 10 <= self.stall_timeout <= 86400:
            raise ValueError(f"stall_timeout: must be 0 (off) or 10..86400 s, got "
                             f"{self.stall_timeout:g}")  # fmt: skip
        if not 1 <= self.restart_backoff_max <= 3600:
            raise ValueError(
                f"restart_backoff_max: must be 1..3600 s, got {self.restart_backoff_max:g}"
            )
        if not 0 <= self.reset_after <= 100:
            raise ValueError(f"reset_after: must be 0..100, got {self.reset_after}")

    @property
    def active(self) -> bool:
        return bool(self.devices or self.presence)

    def names(self) -> list[str]:
        return [d.name for d in self.devices] + [p.name for p in self.presence]


def parse_ble(data: Any, error: Callable[[str, str], Exception]) -> BleConfig:
    """The [ble] table (already-loaded TOML, or None); error(key, message) makes the loader's
    ConfigError. Names are checked against the rest of the config by the caller."""
    if data is None:
        return BleConfig()
    if not isinstance(data, dict):
        raise error("ble", "must be a table")
    top = {k: v for k, v in data.items() if k not in ("devices", "presence")}
    try:
        scanner, _ = parse_record(top, BleConfig)
    except RecordError as e:
        raise error(f"ble.{e.key}" if e.key else "ble", e.message) from None

    def device(item: Any) -> BleDeviceConfig:
        return parse_record(item, BleDeviceConfig)[0]

    devices = parse_records(data.get("devices"), "ble.devices", device, error)
    groups = parse_records(data.get("presence"), "ble.presence", _presence, error)
    _check_unique_addresses(devices, error)
    return dataclasses.replace(scanner, devices=devices, presence=groups)


def _presence(item: Any) -> PresenceConfig:
    if not isinstance(item, dict):
        raise RecordError("", "must be a table")
    raw = item.get("beacons")
    if raw is None:
        raise RecordError("beacons", "is required")
    if not isinstance(raw, list):
        raise RecordError("beacons", "must be a list of addresses or {uuid = ...} tables")
    beacons = []
    for i, b in enumerate(raw):
        try:
            if isinstance(b, str):
                beacons.append(BeaconConfig(address=b))
            else:
                beacons.append(parse_record(b, BeaconConfig)[0])
        except RecordError as e:
            raise RecordError(f"beacons[{i}]" + (f".{e.key}" if e.key else ""), e.message) from None
        except ValueError as e:
            field, _, rest = str(e).partition(": ")
            raise RecordError(f"beacons[{i}].{field}", rest) from None
    return parse_record({**item, "beacons": tuple(beacons)}, PresenceConfig)[0]


def _check_unique_addresses(
    devices: Sequence[BleDeviceConfig], error: Callable[[str, str], Exception]
) -> None:
    seen: dict[str, int] = {}
    for i, d in enumerate(devices):
        if d.address in seen:
            raise error(
                f"ble.devices[{i}].address",
                f"{d.address} is already used by ble.devices[{seen[d.address]}]",
            )
        seen[d.address] = i
