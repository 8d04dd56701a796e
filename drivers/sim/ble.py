"""Simulated BLE air: sensors and beacons that advertise real payloads, and a bleak backend.

bleak lets a scanner take its backend as a class (``BleakScanner(..., backend=cls)``). A
SimRadio makes such a class (``radio.backend()``), a subclass of bleak's own BaseBleakScanner
that hands bleak's AdvertisementData and BLEDevice objects to the detection callback exactly as
the BlueZ backend does, so the agent's scanner runs unchanged on top of it. It behaves like
BlueZ where the agent cares:

- passive scans pass only what matches their or-patterns (and need some, as bleak says);
  with ``passive_supported = False`` a passive start fails with bleak's own message;
- ``start_errors`` are raised by the next starts, in order (e.g. BleakDBusError
  org.bluez.Error.InProgress);
- ``powered = False`` makes starts fail with org.bluez.Error.NotReady until
  ``reset_adapter()``;
- ``silent = True`` is BlueZ's silent stall: scans start and nothing arrives.

Transmitters advertise on their own schedule while a scan runs (``auto=True``), or when a test
calls ``transmit()``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional

from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakDBusError, BleakError

from drivers.sim import ble_frames as frames
from drivers.sim.ble_frames import APPLE_COMPANY, BTHOME_UUID, RUUVI_COMPANY, XIAOMI_UUID
from drivers.sim.bus import RecentList

PASSIVE_UNSUPPORTED_TEXT = (
    "passive scanning on Linux requires BlueZ >= 5.56 with --experimental enabled and Linux "
    "kernel >= 5.10"
)  # what bleak's BlueZ backend raises when the advertisement monitor is missing


def advertisement(
    *,
    rssi: int,
    service_data: Optional[dict[str, bytes]] = None,
    manufacturer_data: Optional[dict[int, bytes]] = None,
    local_name: Optional[str] = None,
    tx_power: Optional[int] = None,
) -> AdvertisementData:
    service_data = dict(service_data or {})
    known: dict[str, Any] = {
        "local_name": local_name,
        "manufacturer_data": dict(manufacturer_data or {}),
        "service_data": service_data,
        "service_uuids": list(service_data),
        "tx_power": tx_power,
        "rssi": rssi,
        "platform_data": (),
    }
    # By field name, so that a field a later bleak adds gets None rather than a TypeError.
    fields: dict[str, Any] = {f: known.get(f) for f in AdvertisementData._fields}
    return AdvertisementData(**fields)


class Transmitter:
    """Something that advertises: `address`, every `every` seconds, while present()."""

    def __init__(
        self,
        address: str,
        every: float,
        rssi: int = -60,
        present: Callable[[], bool] = lambda: True,
        name: Optional[str] = None,
        seed: int = 0,
    ) -> None:
        self.address, self.every, self.rssi, self.present, self.name = (
            address.upper(), every, rssi, present, name,
        )  # fmt: skip
        self.rng = random.Random(seed)
        self.sent = 0

    def advertise(self, now: float) -> AdvertisementData:
        raise NotImplementedError

    def _rssi(self) -> int:
        return self.rssi + round(self.rng.gauss(0, 2))


class BTHomeSensor(Transmitter):
    """A BTHome v2 thermometer: a new measurement (and packet id) every `measure_every`
    seconds, repeated in every advertisement until the next, as such sensors do; encrypted
    with `key` (the counter goes up with every new measurement)."""

    def __init__(
        self,
        address: str,
        values: Callable[[], dict[str, float]],
        *,
        every: float = 1.0,
        measure_every: float = 5.0,
        key: Optional[bytes] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address, every, **kwargs)
        self.values, self.measure_every, self.key = values, measure_every, key
        self.packet_id = 0
        self.counter = int(time.time()) & 0xFFFFFFFF  # what real firmware does: no reset to 0
        self._payload: Optional[bytes] = None
        self._measured_at = float("-inf")

    def advertise(self, now: float) -> AdvertisementData:
        if self._payload is None or now - self._measured_at >= self.measure_every:
            self.packet_id = (self.packet_id + 1) & 0xFF
            self.counter = (self.counter + 1) & 0xFFFFFFFF
            self._measured_at = now
            self._payload = frames.bthome_v2(self.values(), packet_id=self.packet_id, key=self.key,
                                      mac=self.address, counter=self.counter)  # fmt: skip
        return advertisement(rssi=self._rssi(), service_data={BTHOME_UUID: self._payload},
                             local_name=self.name)  # fmt: skip


class RuuviTag(Transmitter):
    def __init__(self, address: str, values: Callable[[], dict[str, float]], **kwargs: Any):
        super().__init__(address, kwargs.pop("every", 1.0), **kwargs)
        self.values, self.sequence = values, 0

    def advertise(self, now: float) -> AdvertisementData:
        v = self.values()
        self.sequence = (self.sequence + 1) % 65535
        data = frames.ruuvi_v5(temperature=v["temperature"], humidity=v["humidity"],
                        pressure_hpa=v["pressure"], voltage=v.get("voltage", 3.0),
                        sequence=self.sequence, mac=self.address)  # fmt: skip
        return advertisement(rssi=self._rssi(), manufacturer_data={RUUVI_COMPANY: data},
                             local_name=self.name)  # fmt: skip


class RuuviAir(Transmitter):
    """A Ruuvi Air sending data format E1, a new sample each advertisement."""

    def __init__(self, address: str, room: Any, **kwargs: Any):
        super().__init__(address, kwargs.pop("every", 1.0), **kwargs)
        self.room, self.sequence = room, 0

    def advertise(self, now: float) -> AdvertisementData:
        env = self.room.environment()
        self.sequence = (self.sequence + 1) % 0xFFFFFF
        pm4_0 = (env.pm2_5 + env.pm10) / 2
        # Sensirion's VOC index: 100 is the room's usual air; people raise it with the CO2.
        voc = max(1, min(500, round(100 + (env.co2 - 450) / 10)))
        data = frames.ruuvi_e1(temperature=env.temperature, humidity=env.humidity,
                               pressure_hpa=env.pressure,
                               pm=(env.pm1_0, env.pm2_5, pm4_0, env.pm10), co2=env.co2,
                               voc_index=voc, nox_index=1, illuminance=env.illuminance,
                               sequence=self.sequence, mac=self.address)  # fmt: skip
        return advertisement(rssi=self._rssi(), manufacturer_data={RUUVI_COMPANY: data},
                             local_name=self.name)  # fmt: skip


class XiaomiThermometer(Transmitter):
    """A LYWSD03MMC on Xiaomi's stock firmware: one quantity per advertisement, in turn
    (temperature, humidity, battery), MiBeacon v5 encrypted with `key`, else v3 plain."""

    PRODUCT_ID = 0x055B  # LYWSD03MMC
    CYCLE = ("temperature", "humidity", "battery")

    def __init__(self, address: str, values: Callable[[], dict[str, float]],
                 key: Optional[bytes] = None, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(address, kwargs.pop("every", 2.0), **kwargs)
        self.values, self.key = values, key
        self.counter = int(time.time()) & 0xFFFFFFFF  # frame and extended counter, never reset

    def advertise(self, now: float) -> AdvertisementData:
        self.counter = (self.counter + 1) & 0xFFFFFFFF
        name = self.CYCLE[self.counter % len(self.CYCLE)]
        data = frames.mibeacon({name: self.values()[name]}, product_id=self.PRODUCT_ID,
                               frame_counter=self.counter & 0xFF, mac=self.address,
                               key=self.key, ext_counter=self.counter >> 8)  # fmt: skip
        return advertisement(rssi=self._rssi(), service_data={XIAOMI_UUID: data},
                             local_name=self.name)  # fmt: skip


class IBeacon(Transmitter):
    """A badge or a phone's app: iBeacon with a fixed identity."""

    def __init__(self, address: str, uuid: str, major: int, minor: int, **kwargs: Any):
        super().__init__(address, kwargs.pop("every", 1.0), **kwargs)
        self.data = frames.ibeacon(uuid, major, minor)

    def advertise(self, now: float) -> AdvertisementData:
        return advertisement(rssi=self._rssi(), manufacturer_data={APPLE_COMPANY: self.data})


class SimRadio:
    def __init__(
        self,
        transmitters: Iterable[Transmitter] = (),
        *,
        auto: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transmitters = list(transmitters)
        self.auto, self.clock = auto, clock
        self.passive_supported = True
        self.start_errors: list[BaseException] = []
        self.powered = True
        self.silent = False
        self.starts = self.stops = self.resets = 0
        # What each start asked for: mode, adapter, ...
        self.scans: RecentList[dict[str, Any]] = RecentList()
        self.active: list[SimScannerBackend] = []
        self._pump: Optional[asyncio.Task[None]] = None

    def backend(self) -> type[BaseBleakScanner]:
        """A bleak backend class bound to this radio."""
        return type("SimScannerBackend", (SimScannerBackend,), {"radio": self})

    async def reset_adapter(self, adapter: Optional[str]) -> None:
        """What the agent calls to power-cycle the (simulated) adapter."""
        self.resets += 1
        self.powered = True

    def transmit(self, address: str, adv: AdvertisementData, name: Optional[str] = None) -> int:
        """Puts one advertisement on the air; returns how many scans heard it."""
        if self.silent:
            return 0
        heard = 0
        for scan in list(self.active):
            if scan.passes(adv):
                device = scan.create_or_update_device(address, address, name, None, adv)
                scan.call_detection_callbacks(device, adv)
                heard += 1
        return heard

    def _start(self, scan: SimScannerBackend) -> None:
        self.starts += 1
        self.scans.append({"mode": scan.mode, "adapter": scan.adapter,
                           "or_patterns": scan.or_patterns})  # fmt: skip
        if self.start_errors:
            raise self.start_errors.pop(0)
        if not self.powered:
            raise BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"])
        if scan.mode == "passive" and not self.passive_supported:
            raise BleakError(PASSIVE_UNSUPPORTED_TEXT)
        self.active.append(scan)
        if self.auto and self._pump is None:
            self._pump = asyncio.ensure_future(self._run())

    def _stop(self, scan: SimScannerBackend) -> None:
        self.stops += 1
        if scan in self.active:
            self.active.remove(scan)
        if not self.active and self._pump is not None:
            self._pump.cancel()
            self._pump = None

    async def _run(self) -> None:
        """Advertises each transmitter on its schedule, with a little jitter as BLE does."""
        due = {id(t): self.clock() + t.every * t.rng.random() for t in self.transmitters}
        while True:
            now = self.clock()
            for t in self.transmitters:
                if due[id(t)] <= now:
                    due[id(t)] = now + t.every * (1 + 0.1 * t.rng.random())
                    if t.present():
                        t.sent += 1
                        self.transmit(t.address, t.advertise(now), t.name)
            soonest = min(due.values(), default=now + 1.0)
            await asyncio.sleep(max(0.005, soonest - self.clock()))


class SimScannerBackend(BaseBleakScanner):
    radio: SimRadio

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: Optional[list[str]],
        scanning_mode: str = "active",
        *,
        bluez: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        bluez = dict(bluez or {})
        self.mode = scanning_mode
        self.adapter = bluez.get("adapter", kwargs.get("adapter"))
        self.or_patterns: Sequence[Any] = tuple(bluez.get("or_patterns") or ())
        if scanning_mode == "passive" and not self.or_patterns:
            raise BleakError("passive scanning mode requires bluez or_patterns")

    async def start(self) -> None:
        self.seen_devices = {}
        self.radio._start(self)

    async def stop(self) -> None:
        self.radio._stop(self)

    def passes(self, adv: AdvertisementData) -> bool:
        """A passive scan's or-patterns, matched as BlueZ's advertisement monitor does: the
        pattern's bytes at its position in an AD structure of its type."""
        if self.mode != "passive":
            return True
        for start, ad_type, content in self.or_patterns:
            for data in _ad_structures(adv, int(ad_type)):
                if data[start : start + len(content)] == bytes(content):
                    return True
        return False


def _ad_structures(adv: AdvertisementData, ad_type: int) -> list[bytes]:
    """The data of each AD structure of one type, rebuilt from bleak's dictionaries."""
    if ad_type == 0x16:
        return [
            bytes.fromhex(u[4:8])[::-1] + data
            for u, data in adv.service_data.items()
            if u.endswith("-0000-1000-8000-00805f9b34fb") and u.startswith("0000")
        ]
    if ad_type == 0xFF:
        return [c.to_bytes(2, "little") + d for c, d in adv.manufacturer_data.items()]
    return []


def radio_for(ble: Any, room: Any, neighbours: bool = False) -> SimRadio:
    """The air around the demo room for a node's [ble] config (agent.config.ble.BleConfig):
    each BLE device a sensor by the window (BTHome v2, encrypted if it has a key; Ruuvi for
    format "ruuvi"; a LYWSD03MMC on stock firmware for "xiaomi"; other formats have no
    simulation and go unavailable, as a missing chip does), and each presence beacon a badge
    that arrives during the room's meetings, one a minute (`room` is
    drivers.sim.room.RoomModel)."""

    def window_side() -> dict[str, float]:
        env = room.environment()
        return {"temperature": env.temperature - 1.2, "humidity": env.humidity + 4.0,
                "pressure": env.pressure, "battery": 87, "voltage": 2.95}  # fmt: skip

    def bthome_values() -> dict[str, float]:
        v = window_side()
        del v["pressure"]
        return v

    transmitters: list[Transmitter] = []
    for i, d in enumerate(ble.devices):
        if d.format in ("auto", "bthome"):
            # A new measurement every few seconds, sent in every advertisement until the next.
            measure = min(5.0, d.interval)
            transmitters.append(BTHomeSensor(d.address, bthome_values, key=d.key_bytes,
                                             measure_every=measure, name=f"sim {d.name}",
                                             seed=i))  # fmt: skip
        elif d.format == "ruuvi":
            transmitters.append(RuuviTag(d.address, window_side, seed=i))
        elif d.format == "xiaomi":
            transmitters.append(XiaomiThermometer(d.address, window_side, key=d.key_bytes,
                                                  name="LYWSD03MMC", seed=i))  # fmt: skip
    arrivals = 0
    for group in ble.presence:
        for b in group.beacons:

            def present(after: float = float(arrivals)) -> bool:
                minutes = room.minutes_into_meeting()
                return minutes is not None and minutes >= after

            arrivals += 1
            if b.address is not None:
                uuid, major, minor, address = _DEMO_UUID, 1, arrivals, b.address
            else:
                uuid, major, minor = b.uuid, b.major or 1, b.minor or arrivals
                address = f"5A:00:00:00:00:{arrivals:02X}"  # a phone's random address
            transmitters.append(IBeacon(address, uuid, major, minor, present=present,
                                        rssi=-70, seed=100 + arrivals))  # fmt: skip
    if neighbours:  # what else a scan hears in a town hall, for scan-ble --simulate
        transmitters += [
            RuuviTag("D7:3A:61:0C:2B:1A", window_side, name="Ruuvi 2B1A", rssi=-74, seed=201),
            RuuviAir("C3:7E:50:A1:88:4F", room, name="Ruuvi Air 884F", rssi=-71, seed=204),
            IBeacon("6E:41:9C:20:7D:55", _DEMO_UUID, 1, 99, rssi=-88, seed=202),
            _Unknown("4F:2E:8A:11:C0:93", rssi=-67, seed=203),
        ]
    return SimRadio(transmitters)


class _Unknown(Transmitter):
    """Something no decoder knows (a phone, a TV): company 0x0075, two bytes."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        super().__init__(address, 1.0, name="[TV] Samsung", **kwargs)

    def advertise(self, now: float) -> AdvertisementData:
        return advertisement(rssi=self._rssi(), manufacturer_data={0x0075: b"\x42\x04"},
                             local_name=self.name)  # fmt: skip


_DEMO_UUID = "2f234454-cf6d-4a0f-adf2-f4911ba9ffa6"
