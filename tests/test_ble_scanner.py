"""The shared scanner through bleak itself: BleakScanner(..., backend=<a BaseBleakScanner
subclass>) with the simulated air of drivers/sim/ble.py, which hands bleak's real BLEDevice and
AdvertisementData to the detection callback and fails its starts with bleak's real exceptions.

The simulated payloads are checked first against the specs' own examples, since every other
BLE test relies on them:
- bthome.io "BTHome v2 format": 02CA09 is 25.06 °C, 03BF13 is 50.55 %; device info 0x40 = v2;
- bthome.io "Encryption": key 231d39c1d7cc1ab1aee224cd096db932, MAC 54:48:E6:8F:80:A5,
  plaintext 02CA0903BF13, counter bytes 33 22 11 00 -> service data 41 E445F3C9962B 33221100
  6C7C4519;
- docs.ruuvi.com "Data format 5 (RAWv2)", test vector "valid data";
- Apple "Proximity Beacon Specification" R1: 02 15, UUID, major, minor (big-endian), power.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, Callable, Optional

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError

from agent.sensing.ble.scanner import PATTERNS, SharedScanner, patterns_for
from drivers.sim import ble_frames
from drivers.sim.ble import BTHomeSensor, IBeacon, SimRadio, advertisement
from tests.waiting import until

SENSOR = "A4:C1:38:00:00:01"
OTHER = "11:22:33:44:55:66"
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")


def test_bthome_payload_is_the_specs_example() -> None:
    assert ble_frames.bthome_v2({"temperature": 25.06, "humidity": 50.55}) == bytes.fromhex(
        "4002ca0903bf13"
    )
    with_id = ble_frames.bthome_v2({"humidity": 50.55, "temperature": 25.06}, packet_id=9)
    assert with_id == bytes.fromhex("40000902ca0903bf13")  # objects in ascending id order


def test_encrypted_bthome_payload_is_the_specs_example() -> None:
    sealed = ble_frames.bthome_v2({"temperature": 25.06, "humidity": 50.55}, key=KEY,
                                  mac="54:48:E6:8F:80:A5", counter=0x00112233)  # fmt: skip
    assert sealed == bytes.fromhex("41e445f3c9962b332211006c7c4519")


def test_ruuvi_payload_is_the_published_test_vector() -> None:
    data = ble_frames.ruuvi_v5(temperature=24.3, humidity=53.49, pressure_hpa=1000.44,
                               voltage=2.977, tx_power=4, acceleration_mg=(4, -4, 1036),
                               movements=66, sequence=205, mac="CB:B8:33:4C:88:4F")  # fmt: skip
    assert data == bytes.fromhex("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F")


def test_ibeacon_payload_follows_apples_layout() -> None:
    data = ble_frames.ibeacon("e2c56db5-dffb-48d2-b060-d0f5a71096e0", 1, 0x0203, -59)
    assert data == bytes.fromhex("0215e2c56db5dffb48d2b060d0f5a71096e000010203c5")


def test_passive_patterns_are_the_formats_on_air_signatures() -> None:
    # Service data UUIDs and company ids are little-endian on the air (Core spec Vol 3 Part C
    # 11, Supplement Part A 1.4 and 1.11): 0xFCD2 is D2 FC, 0x0499 is 99 04, Apple 4C 00.
    assert patterns_for(["bthome"]) == ((0, 0x16, b"\xd2\xfc"),)
    assert patterns_for(["ruuvi", "ibeacon"]) == (
        (0, 0xFF, b"\x99\x04"),
        (0, 0xFF, b"\x4c\x00\x02\x15"),
    )
    assert set(patterns_for(["auto"])) == {p for ps in PATTERNS.values() for p in ps}


def bthome_adv(temperature: float, packet_id: int, rssi: int = -60) -> AdvertisementData:
    payload = ble_frames.bthome_v2({"temperature": temperature}, packet_id=packet_id)
    return advertisement(rssi=rssi, service_data={ble_frames.BTHOME_UUID: payload})


def ibeacon_adv(rssi: int = -60) -> AdvertisementData:
    data = ble_frames.ibeacon("e2c56db5-dffb-48d2-b060-d0f5a71096e0", 1, 2)
    return advertisement(rssi=rssi, manufacturer_data={ble_frames.APPLE_COMPANY: data})


def scanner(radio: SimRadio, **kwargs: Any) -> SharedScanner:
    options: dict[str, Any] = dict(
        wanted=[SENSOR], patterns=patterns_for(["bthome"]), backend=radio.backend(),
        reset_adapter=radio.reset_adapter, stall_timeout=0, backoff_min=0.02, backoff_max=0.08,
    )  # fmt: skip
    options.update(kwargs)
    return SharedScanner(**options)


def running(s: SharedScanner, body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        task = asyncio.ensure_future(s.run())
        try:
            await body()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def test_delivery_keeps_the_newest_advertisement_of_wanted_addresses_only() -> None:
    radio = SimRadio(auto=False)
    s = scanner(radio, scanning_mode="active")
    got: list[tuple[str, Any]] = []
    s.sinks.append(lambda address, adv, now: got.append((address, adv)))

    async def body() -> None:
        assert await until(lambda: s.scanning)
        assert radio.transmit(SENSOR.lower(), bthome_adv(20.0, 1)) == 1
        assert radio.transmit(SENSOR, bthome_adv(21.0, 2)) == 1
        assert radio.transmit(OTHER, bthome_adv(22.0, 3)) == 1

    running(s, body)
    adv, heard = s.latest[SENSOR]
    assert isinstance(adv, AdvertisementData) and adv.service_data[ble_frames.BTHOME_UUID] == (
        ble_frames.bthome_v2({"temperature": 21.0}, packet_id=2)
    )
    assert heard > 0 and set(s.latest) == {SENSOR}  # the stranger was not kept
    stats = s.stats()
    assert (stats.adverts, stats.dropped, stats.errors, stats.restarts) == (3, 1, 0, 0)
    assert [a for a, _ in got] == [SENSOR, SENSOR, OTHER]  # sinks see every address
    assert not s.scanning and radio.active == []  # cancelling stopped the scan


def test_bleak_hands_over_its_own_device_objects() -> None:
    radio = SimRadio(auto=False)
    s = scanner(radio, scanning_mode="active")
    devices: list[Any] = []
    original = s.detected
    s.detected = lambda d, a: (devices.append(d), original(d, a))  # type: ignore[method-assign]

    async def body() -> None:
        assert await until(lambda: s.scanning)
        radio.transmit(SENSOR, bthome_adv(20.0, 1), name="thermo")

    running(s, body)
    # bleak checks the callback's signature and wraps nothing: the backend's BLEDevice arrives.
    assert devices and isinstance(devices[0], BLEDevice) and devices[0].name == "thermo"


def test_passive_scan_on_the_configured_adapter_passes_only_its_patterns() -> None:
    radio = SimRadio(auto=False)
    s = scanner(radio, adapter="hci1")

    async def body() -> None:
        assert await until(lambda: s.scanning)
        assert radio.transmit(SENSOR, bthome_adv(20.0, 1)) == 1
        assert radio.transmit(SENSOR, ibeacon_adv()) == 0  # not an or-pattern of this scan

    running(s, body)
    scan = radio.scans[0]
    assert scan["mode"] == "passive" == s.stats().mode
    assert scan["adapter"] == "hci1"  # bleak 3: bluez={"adapter"}; bleak 1: adapter=
    assert [tuple(p) for p in scan["or_patterns"]] == [(0, 0x16, b"\xd2\xfc")]
    assert s.stats().adverts == 1


def test_auto_falls_back_to_active_scanning_where_bluez_cannot_scan_passively() -> None:
    radio = SimRadio(auto=False)
    radio.passive_supported = False
    s = scanner(radio)

    async def body() -> None:
        assert await until(lambda: s.scanning)
        assert radio.transmit(SENSOR, ibeacon_adv()) == 1  # active: everything comes through

    running(s, body)
    assert [scan["mode"] for scan in radio.scans] == ["passive", "active"]
    stats = s.stats()
    assert (stats.mode, stats.errors, stats.starts, stats.restarts) == ("active", 0, 1, 0)


def test_a_dbus_not_supported_answer_also_means_active() -> None:
    radio = SimRadio(auto=False)
    radio.start_errors = [BleakDBusError("org.bluez.Error.NotSupported", [])]
    s = scanner(radio)

    async def body() -> None:
        assert await until(lambda: s.scanning)

    running(s, body)
    assert s.stats().mode == "active" and s.stats().errors == 0


def test_passive_when_asked_for_is_not_quietly_changed() -> None:
    radio = SimRadio(auto=False)
    radio.passive_supported = False
    s = scanner(radio, scanning_mode="passive")

    async def body() -> None:
        assert await until(lambda: s.stats().errors >= 2)

    running(s, body)
    assert {scan["mode"] for scan in radio.scans} == {"passive"}
    assert "BlueZ >= 5.56" in (s.stats().last_error or "")


@pytest.mark.parametrize(
    "error",
    [
        BleakDBusError("org.bluez.Error.InProgress", ["Operation already in progress"]),
        BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]),
        BleakError("Bluetooth adapter not found"),
    ],
    ids=["InProgress", "NotReady", "no-adapter"],
)
def test_errors_on_start_are_retried_with_backoff_and_counted(error: Exception) -> None:
    radio = SimRadio(auto=False)
    radio.start_errors = [error, error]
    s = scanner(radio, scanning_mode="active", backoff_min=0.05, backoff_max=1.0)

    async def body() -> None:
        assert await until(lambda: s.scanning)
        radio.transmit(SENSOR, bthome_adv(20.0, 1))
        # Heard after the start: the failure run is over.
        assert await until(lambda: s.failures == 0)

    started = time.monotonic()
    running(s, body)
    stats = s.stats()
    assert (stats.errors, stats.starts, stats.restarts, stats.adapter_resets) == (2, 3, 2, 0)
    assert str(error) in (stats.last_error or "")
    assert time.monotonic() - started >= 0.05 + 0.1  # waited 0.05 s, then twice that


def test_a_silent_scan_is_restarted_with_growing_waits_and_the_adapter_reset() -> None:
    radio = SimRadio(auto=False)
    radio.silent = True  # BlueZ's silent stall: every start succeeds, nothing arrives
    times: list[float] = []
    original = radio._start

    def start(scan: Any) -> None:
        times.append(time.monotonic())
        original(scan)

    radio._start = start  # type: ignore[method-assign]
    s = scanner(radio, scanning_mode="active", stall_timeout=0.15, backoff_min=0.05,
                backoff_max=0.2, reset_after=3)  # fmt: skip

    async def body() -> None:
        assert await until(lambda: s.stats().stalls >= 4, timeout=10)
        radio.silent = False
        assert await until(lambda: s.scanning)
        radio.transmit(SENSOR, bthome_adv(20.0, 1))
        assert await until(lambda: s.failures == 0)

    running(s, body)
    stats = s.stats()
    assert stats.stalls >= 4 and stats.restarts == stats.starts - 1 >= 4
    assert stats.adapter_resets == radio.resets >= 1  # after the 3rd failure in a row
    assert stats.errors == 0
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Each gap is the stall timeout plus the backoff: 0.05, 0.1, 0.2, 0.2 (capped).
    assert gaps[0] >= 0.15 + 0.05 and gaps[1] >= 0.15 + 0.1 and gaps[2] >= 0.15 + 0.2
    assert [s.backoff(n) for n in range(1, 6)] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert SharedScanner(backoff_min=1, backoff_max=300).backoff(100) == 300  # no overflow


def test_an_unpowered_adapter_is_reset_after_repeated_not_ready() -> None:
    radio = SimRadio(auto=False)
    radio.powered = False  # every start: org.bluez.Error.NotReady, until a reset powers it
    s = scanner(radio, scanning_mode="active", reset_after=3)

    async def body() -> None:
        assert await until(lambda: s.scanning)

    running(s, body)
    stats = s.stats()
    assert (stats.errors, stats.adapter_resets, radio.resets) == (3, 1, 1)
    assert "org.bluez.Error.NotReady" in (stats.last_error or "")


def test_a_failing_reset_is_reported_and_scanning_goes_on_trying() -> None:
    radio = SimRadio(auto=False)
    radio.start_errors = [BleakError("adapter gone")] * 4

    async def broken_reset(adapter: Optional[str]) -> None:
        raise OSError("org.bluez.Error.Failed")

    s = scanner(radio, scanning_mode="active", reset_after=2, reset_adapter=broken_reset)

    async def body() -> None:
        assert await until(lambda: s.scanning)

    running(s, body)
    assert s.stats().adapter_resets == 2 and s.stats().errors == 4


def test_a_failing_sink_is_counted_and_never_stops_delivery() -> None:
    radio = SimRadio(auto=False)
    s = scanner(radio, scanning_mode="active")
    seen: list[str] = []

    def broken(address: str, adv: Any, now: float) -> None:
        raise ValueError("bug")

    s.sinks += [broken, lambda address, adv, now: seen.append(address)]

    async def body() -> None:
        assert await until(lambda: s.scanning)
        for i in range(3):
            radio.transmit(SENSOR, bthome_adv(20.0, i))

    running(s, body)
    assert s.stats().sink_errors == 3 and seen == [SENSOR] * 3 and SENSOR in s.latest


def test_without_a_stall_timeout_silence_is_no_failure() -> None:
    radio = SimRadio(auto=False)
    s = scanner(radio, scanning_mode="active", stall_timeout=0)

    async def body() -> None:
        assert await until(lambda: s.scanning)
        await asyncio.sleep(0.3)  # the scenario: a silence, which must not count as a stall

    running(s, body)
    assert s.stats().starts == 1 and s.stats().stalls == 0


def test_ten_advertisements_a_second_cost_the_hot_path_little() -> None:
    """The simulated air at 10 Hz per sensor; the callback only stores, so the store always
    holds the newest, and nothing is decoded here."""
    values = iter(range(1000))
    sensor = BTHomeSensor(SENSOR, lambda: {"temperature": 20 + next(values) / 100}, every=0.1,
                          measure_every=0.1)  # fmt: skip
    radio = SimRadio([sensor, IBeacon(OTHER, "e2c56db5-dffb-48d2-b060-d0f5a71096e0", 1, 2,
                                      every=0.1)])  # fmt: skip
    s = scanner(radio, scanning_mode="active")

    async def body() -> None:
        assert await until(lambda: s.stats().adverts >= 10, timeout=10)

    running(s, body)
    stats = s.stats()
    assert stats.dropped >= 3  # the beacon is not a wanted address
    adv, _ = s.latest[SENSOR]
    newest = ble_frames.bthome_v2({"temperature": 20 + (sensor.packet_id - 1) / 100},
                                  packet_id=sensor.packet_id)  # fmt: skip
    assert adv.service_data[ble_frames.BTHOME_UUID] == newest


def test_scan_ble_lists_what_is_heard_strongest_first_decoded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from agent.app.cli import main
    from tests.conftest import REPO

    status = main(["scan-ble", "--simulate", "--seconds", "1.5",
                   "--config", str(REPO / "firmware_configs" / "demo.toml")])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert status == 0, out
    rows = [line.split() for line in out[2:]]
    # The sensor, a Ruuvi tag, a Ruuvi Air, a TV, a far beacon, and the demo's three badges
    # during its meetings (one more each minute): 5 to 8.
    assert out[0].startswith(f"{len(rows)} BLE devices heard in 1.5 s") and 5 <= len(rows) <= 8
    rssi = [int(r[1]) for r in rows]
    assert rssi == sorted(rssi, reverse=True)
    window = next(line for line in out if line.lstrip().startswith("A4:C1:38:5E:12:01"))
    # The demo's sensor is encrypted: its values show because the config holds its key.
    assert "bthome" in window and "[window]" in window and "temperature=" in window
    ruuvi = next(line for line in out if "Ruuvi 2B1A" in line)
    assert "ruuvi_v5" in ruuvi and "pressure=" in ruuvi and "hPa" in ruuvi
    air = next(line for line in out if "Ruuvi Air 884F" in line)
    assert "ruuvi_e1" in air and "co2=" in air and "ppm" in air and "nox_index=" in air
    assert any("[TV] Samsung" in line and " - " in line for line in out)  # heard, not decoded


def test_scan_ble_without_the_key_or_the_device(tmp_path: Any, capsys: Any) -> None:
    from agent.app.cli import main
    from agent.tools.scan_ble import report, scan
    from tests.conftest import REPO

    sealed = BTHomeSensor(SENSOR, lambda: {"temperature": 20.0}, every=0.05, key=KEY)
    radio = SimRadio([sealed])
    found, stats = asyncio.run(scan(0.5, backend=radio.backend()))
    assert [(s.address, s.format, s.values) for s in found] == [(SENSOR, "bthome", {})]
    assert "no key" in (found[0].problem or "")  # recognised, and why it is not shown
    assert "no key" in report(found, [], stats, 0.5)
    found, _ = asyncio.run(scan(0.5, backend=radio.backend(), keys={SENSOR: KEY}))
    assert found[0].values == {"temperature": 20.0}

    demo = (REPO / "firmware_configs" / "demo.toml").read_text()
    missing = tmp_path / "missing.toml"
    # An Eddystone device: the simulated air has none, so it is not heard.
    missing.write_text(demo.replace("A4:C1:38:5E:12:01", "A4:C1:38:5E:12:09")
                       .replace('format = "bthome"', 'format = "eddystone"')
                       .replace('key = "231d39c1d7cc1ab1aee224cd096db932"\n', "")
                       .replace("../.demo/state", str(tmp_path)))  # fmt: skip
    assert main(["scan-ble", "--simulate", "--seconds", "1", "--config", str(missing)]) == 1
    assert "not heard: window (A4:C1:38:5E:12:09)" in capsys.readouterr().out


def test_an_unexpected_error_in_the_watchdog_restarts_the_scan() -> None:
    """Fault injection: the watchdog itself fails once; the scanner must not end."""
    radio = SimRadio(auto=False)
    s = scanner(radio, scanning_mode="active")
    original = s._watch
    calls = 0

    async def failing_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug")
        return await original()

    s._watch = failing_once  # type: ignore[method-assign]

    async def body() -> None:
        assert await until(lambda: s.stats().starts == 2 and s.scanning)

    running(s, body)
    stats = s.stats()
    assert stats.errors == 1 and "RuntimeError: bug" in (stats.last_error or "")
    assert radio.stops >= 2  # the failed scan was stopped before the next
