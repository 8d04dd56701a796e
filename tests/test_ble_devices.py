"""The per-device layer with the real decoders (drivers/ble) on real advertisement bytes, an
injected clock, and the scanner's store of newest advertisements filled as the hot path does.
The BLE device config is checked here too.

Expected behaviour comes from the issue and the specs: BTHome's packet id is for
deduplication and its encryption counter "should increase every advertisement" and is for
replay protection on the receiving side (bthome.io "Encryption"); the BTHome event example
3A01 is a button press (bthome.io "BTHome v2 format", events table).
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config import schema as config
from agent.config.ble import FORMATS, BleDeviceConfig
from agent.config.schema import ConfigError
from agent.sensing.ble.devices import PEEK, DeviceLayer, is_newer
from agent.sensing.ble.scanner import SharedScanner, patterns_for
from drivers.sim import ble_frames
from drivers.sim.ble import BTHomeSensor, SimRadio, XiaomiThermometer, advertisement

ADDRESS = "A4:C1:38:00:00:01"
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def adv(payload: bytes, rssi: int = -60) -> Any:
    return advertisement(rssi=rssi, service_data={ble_frames.BTHOME_UUID: payload})


def plain(packet_id: int, **values: float) -> Any:
    return adv(ble_frames.bthome_v2(values, packet_id=packet_id))


def sealed(counter: int, packet_id: int, **values: float) -> Any:
    return adv(ble_frames.bthome_v2(values, packet_id=packet_id, key=KEY, mac=ADDRESS,
                                    counter=counter))  # fmt: skip


class Rig:
    """A layer over one device, and a way to hear an advertisement at the current time."""

    def __init__(self, **device: Any) -> None:
        self.clock = Clock()
        self.latest: dict[str, tuple[Any, float]] = {}
        options = {"name": "window", "address": ADDRESS, "interval": 10.0, **device}
        self.layer = DeviceLayer([BleDeviceConfig(**options)], self.latest, clock=self.clock)

    def hear(self, advertisement: Any, after: float = 0.1) -> None:
        self.clock.t += after
        self.latest[ADDRESS] = (advertisement, self.clock.t)

    def tick(self, after: float = 0.0) -> tuple[list[Any], list[Any]]:
        self.clock.t += after
        return self.layer.tick()

    def counts(self) -> dict[str, int]:
        return self.layer.counts()["window"]


def test_one_reading_per_interval_and_the_latest_value_wins() -> None:
    rig = Rig()
    rig.hear(plain(1, temperature=20.0))
    readings, changes = rig.tick()
    assert [(r.device, dict(r.values), r.format, r.rssi) for r in readings] == [
        ("window", {"temperature": 20.0}, "bthome", -60)
    ]
    assert [(c.device, c.available) for c in changes] == [("window", True)]
    for i in range(2, 40):  # four seconds at ten advertisements a second, new values in each
        rig.hear(plain(i, temperature=20.0 + i / 10))
        assert rig.tick() == ([], [])
    rig.hear(plain(99, temperature=25.5), after=6.5)  # 10.3 s after the first reading
    readings, _ = rig.tick()
    assert [dict(r.values) for r in readings] == [{"temperature": 25.5}]
    assert readings[0].heard == rig.clock.t
    assert rig.counts() == {"readings": 2}


def test_a_repeated_packet_id_is_a_duplicate_not_a_reading_but_keeps_the_device_up() -> None:
    rig = Rig(interval=1.0, unavailable_after=5.0)
    rig.hear(plain(7, temperature=20.0))
    assert len(rig.tick()[0]) == 1
    for _ in range(10):  # the same measurement, advertised again and again for 10 s
        rig.hear(plain(7, temperature=20.0), after=1.0)
        assert rig.tick() == ([], [])
    rig.hear(plain(8, temperature=20.5), after=1.0)
    readings, _ = rig.tick()
    assert [dict(r.values) for r in readings] == [{"temperature": 20.5}]
    assert rig.counts() == {"readings": 2, "duplicates": 10}


def test_encrypted_counter_must_increase_replays_are_refused_and_counted() -> None:
    rig = Rig(interval=1.0, key=KEY.hex())
    rig.hear(sealed(100, 1, temperature=20.0))
    assert len(rig.tick()[0]) == 1
    rig.hear(sealed(100, 1, temperature=20.0), after=2)  # the same frame heard again
    assert rig.tick() == ([], [])
    rig.hear(sealed(50, 2, temperature=30.0), after=2)  # authentic, but older: a replay
    assert rig.tick() == ([], [])
    rig.hear(sealed(101, 3, temperature=21.0), after=2)
    readings, _ = rig.tick()
    assert [dict(r.values) for r in readings] == [{"temperature": 21.0}]
    assert rig.counts() == {"readings": 2, "duplicates": 1, "replays": 1}


def test_quantities_sent_in_separate_advertisements_make_one_reading() -> None:
    # Xiaomi's stock firmware sends temperature, humidity and battery in separate
    # advertisements (the peers' captures in tests/test_ble_xiaomi_decode.py carry one object
    # each). What authentic frames said between readings is merged under the newest frame.
    rig = Rig(interval=10.0, key=KEY.hex())
    rig.hear(sealed(1, 1, temperature=20.0))
    assert [dict(r.values) for r in rig.tick()[0]] == [{"temperature": 20.0}]
    rig.hear(sealed(2, 2, humidity=40.0), after=1.0)
    assert rig.tick() == ([], [])
    rig.hear(sealed(0, 9, humidity=99.0), after=1.0)  # authentic but older: not kept
    assert rig.tick() == ([], [])
    rig.hear(plain(10, voltage=1.0), after=1.0)  # plain, and a key is configured: not kept
    assert rig.tick() == ([], [])
    rig.hear(sealed(3, 3, temperature=21.0), after=8.0)
    readings, _ = rig.tick()
    assert [dict(r.values) for r in readings] == [{"temperature": 21.0, "humidity": 40.0}]
    rig.hear(sealed(4, 4, temperature=21.5), after=10.0)  # what was merged is not carried on
    assert [dict(r.values) for r in rig.tick()[0]] == [{"temperature": 21.5}]


def test_a_keyed_device_refuses_plain_frames_and_frames_under_another_key() -> None:
    rig = Rig(interval=1.0, key=KEY.hex())
    rig.hear(plain(1, temperature=20.0))  # anyone can send this
    assert rig.tick() == ([], [])
    other = ble_frames.bthome_v2({"temperature": 20.0}, key=bytes(16), mac=ADDRESS, counter=5)
    rig.hear(adv(other), after=2)
    assert rig.tick() == ([], [])
    assert rig.counts() == {"plain_refused": 1, "key_errors": 1}


def test_malformed_and_foreign_advertisements_are_counted_never_fatal() -> None:
    rig = Rig(interval=1.0)
    rig.hear(adv(bytes.fromhex("4002ca")))  # temperature cut short: two bytes announced
    assert rig.tick() == ([], [])
    # Company 0xFFFF is for tests (Bluetooth Assigned Numbers): no decoder knows it.
    rig.hear(advertisement(rssi=-60, manufacturer_data={0xFFFF: b"\x01\x02"}), after=2)
    assert rig.tick() == ([], [])
    rig.hear(plain(1, temperature=20.0), after=2)
    assert len(rig.tick()[0]) == 1
    assert rig.counts() == {"readings": 1, "undecodable": 1, "unrecognised": 1}


def test_a_format_restricts_what_is_decoded() -> None:
    rig = Rig(interval=1.0, format="ruuvi")
    rig.hear(plain(1, temperature=20.0))
    assert rig.tick() == ([], [])
    ruuvi = ble_frames.ruuvi_v5(temperature=21.5, humidity=40.0, pressure_hpa=1000.0,
                                voltage=3.0, sequence=1)  # fmt: skip
    rig.hear(advertisement(rssi=-70, manufacturer_data={ble_frames.RUUVI_COMPANY: ruuvi}), 2)
    readings, _ = rig.tick()
    assert readings[0].format == "ruuvi_v5" and readings[0].values["temperature"] == 21.5
    assert rig.counts() == {"readings": 1, "unrecognised": 1}


def test_a_decoder_bug_is_logged_and_counted() -> None:
    """Fault injection: a decoder that raises something it should not."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise IndexError("decoder bug")

    clock, latest = Clock(), {}
    layer = DeviceLayer([BleDeviceConfig("window", ADDRESS, 1.0)], latest, clock=clock,
                        decoder=broken)  # fmt: skip
    latest[ADDRESS] = (plain(1, temperature=20.0), clock.t)
    assert layer.tick() == ([], [])
    assert layer.counts() == {"window": {"errors": 1}}


def test_implausible_values_are_left_out() -> None:
    rig = Rig(interval=1.0)
    rig.hear(plain(1, temperature=84.0, humidity=50.0))
    assert dict(rig.tick()[0][0].values) == {"temperature": 84.0, "humidity": 50.0}
    rig.hear(plain(2, temperature=120.0, humidity=50.0), after=2)  # -40..85 °C in a room
    assert dict(rig.tick()[0][0].values) == {"humidity": 50.0}
    assert rig.counts()["implausible"] == 1


def test_a_button_press_goes_out_at_once_whatever_the_interval() -> None:
    rig = Rig(interval=60.0)
    rig.hear(plain(1, temperature=20.0))
    assert len(rig.tick()[0]) == 1
    rig.hear(adv(bytes.fromhex("4000023a01")))  # packet 2: button press (3A01)
    readings, _ = rig.tick(after=1.0)
    assert [dict(r.values) for r in readings] == [{"button": "press"}]
    rig.hear(adv(bytes.fromhex("4000023a01")))  # the same press repeated: not pressed twice
    assert rig.tick(after=1.0) == ([], [])
    rig.hear(adv(bytes.fromhex("4000033a01")))
    assert len(rig.tick(after=1.0)[0]) == 1


def test_silence_makes_the_device_unavailable_with_the_reason_and_back() -> None:
    rig = Rig(interval=10.0, unavailable_after=30.0, key=KEY.hex())
    rig.hear(sealed(10, 1, temperature=20.0))
    assert rig.tick()[1][0].available is True
    assert rig.tick(after=29.0)[1] == []
    rig.hear(plain(2, temperature=20.0))  # heard, but refused: not proof of life
    _, changes = rig.tick(after=1.0)
    assert [(c.available, c.reason) for c in changes] == [
        (False, "nothing decodable heard for 30 s (last problem: unencrypted advertisement, "
                "but a key is configured)")
    ]  # fmt: skip
    assert rig.tick(after=100.0) == ([], [])  # said once
    rig.hear(sealed(11, 3, temperature=21.0))
    readings, changes = rig.tick()
    assert len(readings) == 1 and [c.available for c in changes] == [True]


def test_a_device_never_heard_goes_unavailable_after_its_staleness() -> None:
    rig = Rig(interval=10.0, unavailable_after=60.0)
    assert rig.tick(after=59.0) == ([], [])
    _, changes = rig.tick(after=1.0)
    assert [(c.device, c.available) for c in changes] == [("window", False)]


@pytest.mark.parametrize(
    ("counter", "last", "bits", "newer"),
    [
        (101, 100, 32, True),
        (100, 100, 32, False),
        (5, 100, 32, False),  # BTHome: a plain comparison, no wrap in a sensor's life
        (0, 255, 8, True),  # pvvx/ATC: 8 bits, wrapped (RFC 1982: 0 - 255 = 1 mod 256)
        (126, 255, 8, True),  # 127 ahead
        (127, 255, 8, False),  # 128 ahead: undefined in RFC 1982, refused
        (255, 0, 8, False),  # one behind
    ],
)
def test_counter_order(counter: int, last: int, bits: int, newer: bool) -> None:
    assert is_newer(counter, last, bits) is newer


def test_ten_advertisements_a_second_through_the_real_scanner_are_decoded_rarely() -> None:
    """The simulated sensor at 10 Hz with a new measurement in each advertisement, through
    bleak into the scanner's store, and the layer ticking every 0.25 s with a 1 s interval."""
    counter = iter(range(10_000))
    sensor = BTHomeSensor(ADDRESS, lambda: {"temperature": 20 + next(counter) / 100},
                          every=0.1, measure_every=0.1)  # fmt: skip
    radio = SimRadio([sensor])
    scanner = SharedScanner(wanted=[ADDRESS], patterns=patterns_for(["bthome"]),
                            backend=radio.backend(), stall_timeout=0)  # fmt: skip
    decodes = 0

    def counting_decoder(*args: Any, **kwargs: Any) -> Any:
        nonlocal decodes
        decodes += 1
        from drivers.ble import decode_frame

        return decode_frame(*args, **kwargs)

    layer = DeviceLayer([BleDeviceConfig("window", ADDRESS, 1.0)], scanner.latest,
                        decoder=counting_decoder)  # fmt: skip
    readings: list[Any] = []

    async def main() -> None:
        task = asyncio.ensure_future(scanner.run())
        start = time.monotonic()
        while time.monotonic() - start < 3.0:
            await asyncio.sleep(0.25)
            got, _ = layer.tick()
            for r in got:
                # The latest value wins: what was decoded is the newest the sensor had sent.
                newest = 20 + (sensor.packet_id - 1) / 100
                assert abs(r.values["temperature"] - newest) < 0.015
            readings.extend(got)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    heard = scanner.stats().adverts
    assert heard >= 20, heard  # about 30 arrived
    assert 2 <= len(readings) <= 4  # one a second
    # Not one decode per advertisement: one per reading, plus a look for events every PEEK.
    assert decodes <= len(readings) + 3.0 / PEEK + 1 < heard


def test_a_stock_xiaomi_thermometer_through_the_real_scanner_gives_whole_readings() -> None:
    """A simulated LYWSD03MMC on stock firmware (one quantity per encrypted MiBeacon, in turn)
    every 0.6 s, passively scanned for the xiaomi pattern, the layer ticking every 0.1 s with
    a 2 s interval: a reading carries all three quantities, merged from separate
    advertisements (without the merge each reading would carry one)."""
    key = bytes.fromhex("e9ea895fac7cca6d30532432a516f3a8")
    sent = {"temperature": 21.3, "humidity": 48.5, "battery": 87.0}
    sensor = XiaomiThermometer(ADDRESS, lambda: dict(sent), key=key, every=0.6)
    scanner = SharedScanner(wanted=[ADDRESS], patterns=patterns_for(["xiaomi"]),
                            backend=SimRadio([sensor]).backend(), stall_timeout=0)  # fmt: skip
    device = BleDeviceConfig("desk", ADDRESS, 2.0, format="xiaomi", key=key.hex())
    layer = DeviceLayer([device], scanner.latest)
    readings: list[Any] = []

    async def main() -> None:
        task = asyncio.ensure_future(scanner.run())
        deadline = time.monotonic() + 30.0
        while sent not in [dict(r.values) for r in readings] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            readings.extend(layer.tick()[0])
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert sent in [dict(r.values) for r in readings], [dict(r.values) for r in readings]
    assert all(dict(r.values).items() <= sent.items() for r in readings)
    assert layer.counts()["desk"].get("replays", 0) == 0


# The BLE device config -------------------------------------------------------------------------

NODE = """
[node]
id = "room-1"
[broker]
host = "broker.example"
"""


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "node.toml"
    path.write_text(NODE + textwrap.dedent(text))
    return config.load(path)


def test_a_ble_device_config(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
        [ble]
        adapter = "hci1"
        scanning_mode = "active"
        [[ble.devices]]
        name = "window"
        address = "a4-c1-38-12-34-56"
        format = "bthome"
        key = "231D39C1D7CC1AB1AEE224CD096DB932"
        interval = 30
    """)  # fmt: skip
    ble = cfg.ble
    assert (ble.adapter, ble.scanning_mode, ble.stall_timeout, ble.reset_after) == (
        "hci1", "active", 300.0, 3,
    )  # fmt: skip
    (d,) = ble.devices
    assert (d.name, d.address, d.format, d.interval) == ("window", "A4:C1:38:12:34:56",
                                                          "bthome", 30.0)  # fmt: skip
    assert d.key_bytes == KEY and d.unavailable_after == 600.0  # max(600, 3 × interval)
    assert ble.active and not config.load(tmp_path / "node.toml").devices


def test_the_config_offers_the_formats_the_decoders_declare() -> None:
    # One list (drivers.ble.FAMILIES); the new formats are offered, and the keyed ones take a key.
    assert {"auto", "xiaomi", "bthome_v1", "ruuvi"} <= set(FORMATS)
    for fmt in ("xiaomi", "bthome_v1", "bthome", "atc_pvvx"):
        device = BleDeviceConfig(name="t", address=ADDRESS, format=fmt, key=KEY.hex())
        assert device.key_bytes == KEY
    with pytest.raises(ValueError, match="never encrypted"):
        BleDeviceConfig(name="t", address=ADDRESS, format="ruuvi", key=KEY.hex())


BAD = [
    ('address = "A4:C1:38:12:34"', "ble.devices[0].address: must be a MAC address"),
    ('key = "231d39"', "ble.devices[0].key: must be 32 hex digits (16 bytes), got 6"),
    ('key = "231d39c1d7cc1ab1aee224cd096db93g"', "ble.devices[0].key: must be 32 hex digits"),
    ('format = "ibeacon"\nkey = "231d39c1d7cc1ab1aee224cd096db932"',
     "ble.devices[0].key: format 'ibeacon' is never encrypted"),
    ('format = "miflora"', "ble.devices[0].format: must be one of auto, bthome"),
    ("interval = 0.5", "ble.devices[0].interval: must be 1..86400 s, got 0.5"),
    ("unavailable_after = 5", "ble.devices[0].unavailable_after: must be 60 s (the interval)"),
    ("colour = 1", "ble.devices[0].colour: unknown key"),
    ('name = "a b"', "ble.devices[0].name: must be 1-64 letters"),
    ('name = "agent"', "ble.devices[0].name: 'agent' is reserved"),
    ('name = "climate"', "ble.devices[0].name: 'climate' is already used by devices[0]"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "message"), BAD)
def test_bad_ble_device_config_names_the_key(tmp_path: Path, line: str, message: str) -> None:
    device = {"name": '"window"', "address": '"A4:C1:38:12:34:56"', "interval": "60"}
    key = line.split(" = ")[0]
    if key in device:
        device[key] = line.split(" = ", 1)[1]
        line = ""
    body = "\n".join(f"{k} = {v}" for k, v in device.items())
    with pytest.raises(ConfigError) as e:
        load(tmp_path, f"""
[[devices]]
name = "climate"
driver = "bme280"
interval = 5
[[ble.devices]]
{body}
{line}
""")  # fmt: skip
    assert message in str(e.value)


def test_two_ble_devices_cannot_share_an_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ble.devices\[1\].address: A4:C1:38:12:34:56 is "
                                          r"already used by ble.devices\[0\]"):  # fmt: skip
        load(tmp_path, """
            [[ble.devices]]
            name = "a"
            address = "A4:C1:38:12:34:56"
            [[ble.devices]]
            name = "b"
            address = "a4:c1:38:12:34:56"
        """)  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('adapter = "bluetooth0"', "ble.adapter: must be an adapter name like 'hci0'"),
        ('scanning_mode = "fast"', "ble.scanning_mode: must be one of auto, passive, active"),
        ("stall_timeout = 5", "ble.stall_timeout: must be 0 (off) or 10..86400 s"),
        ("reset_after = -1", "ble.reset_after: must be 0..100"),
        ("devices = 3", "ble.devices: must be an array of tables"),
    ],
)
def test_bad_scanner_config_names_the_key(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, f"[ble]\n{line}\n")
    assert message in str(e.value)


def test_a_zone_may_regulate_on_a_ble_thermometer_that_says_it_measures_temperature(
    tmp_path: Path,
) -> None:
    zone = """
        [[ble.devices]]
        name = "window"
        address = "A4:C1:38:12:34:56"
        {quantities}
        [[relays]]
        name = "heater"
        pin = 17
        [[zones]]
        name = "chamber"
        sensor = "window"
        heat = ["heater"]
        comfort = 21.0
        eco = 17.0
        boost = 23.0
    """
    cfg = load(tmp_path, zone.format(quantities='quantities = ["temperature"]'))
    assert cfg.control.zones[0].sensor == "window"
    with pytest.raises(ConfigError, match=r"zones\[0\].sensor: no device 'window' measuring "
                                          r"temperature"):  # fmt: skip
        load(tmp_path, zone.format(quantities=""))
