"""Presence: configured beacons counted within a window and an RSSI threshold, from real
advertisements (iBeacon as Apple's Proximity Beacon Specification lays it out), through the
scanner's sink, and used by the room's control alongside the PIR."""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path
from typing import Any, Optional

import pytest
from gpiozero.pins.mock import MockFactory

from agent.common.state_store import StateStore
from agent.config import schema as config_mod
from agent.config.ble import BeaconConfig, PresenceConfig
from agent.config.schema import ConfigError
from agent.control.room import RoomController
from agent.sensing.ble.presence import Presence
from agent.sensing.ble.scanner import SharedScanner, patterns_for
from drivers.sim import ble_frames
from drivers.sim.ble import IBeacon, SimRadio, advertisement
from tests.clocks import FakeClock

BADGE_1, BADGE_2 = "C8:FD:19:00:00:01", "C8:FD:19:00:00:02"
UUID = "2f234454-cf6d-4a0f-adf2-f4911ba9ffa6"


def badge_adv(rssi: int) -> Any:
    # A badge that sends something no decoder knows: matched by its address alone.
    return advertisement(rssi=rssi, manufacturer_data={0xFFFF: b"\x00"})


def ibeacon_adv(major: int, minor: int, rssi: int = -60, uuid: str = UUID) -> Any:
    data = ble_frames.ibeacon(uuid, major, minor)
    return advertisement(rssi=rssi, manufacturer_data={ble_frames.APPLE_COMPANY: data})


def group(**kwargs: Any) -> PresenceConfig:
    options: dict[str, Any] = {
        "name": "badges",
        "beacons": (BeaconConfig(address=BADGE_1), BeaconConfig(address=BADGE_2)),
        "window": 60.0,
        "rssi_min": -80,
        "interval": 30.0,
    }
    options.update(kwargs)
    return PresenceConfig(**options)


def test_beacons_count_while_heard_strongly_enough_within_the_window() -> None:
    clock = FakeClock()
    presence = Presence([group()], clock=clock.monotonic)
    assert presence.occupancy() == {"badges": 0}
    presence.sink(BADGE_1, badge_adv(-70), clock.monotonic())
    presence.sink(BADGE_2, badge_adv(-81), clock.monotonic())  # in the corridor: too weak
    presence.sink("C8:FD:19:00:00:03", badge_adv(-50), clock.monotonic())  # not ours
    assert presence.occupancy() == {"badges": 1}
    clock.advance(30)
    presence.sink(BADGE_2, badge_adv(-80), clock.monotonic())  # at the threshold: counts
    assert presence.occupancy() == {"badges": 2}
    clock.advance(30)  # badge 1 last heard 60 s ago: still within the window
    assert presence.occupancy() == {"badges": 2}
    clock.advance(0.1)
    assert presence.occupancy() == {"badges": 1}
    presence.sink(BADGE_1, badge_adv(-95), clock.monotonic())  # weak sightings do not renew
    assert presence.occupancy() == {"badges": 1}
    clock.advance(31)
    assert presence.occupancy() == {"badges": 0}


def test_ibeacons_match_by_uuid_major_and_minor_from_any_address() -> None:
    clock = FakeClock()
    beacons = (BeaconConfig(uuid=UUID.upper(), major=1, minor=7), BeaconConfig(uuid=UUID,
               major=2))  # fmt: skip
    presence = Presence([group(beacons=beacons)], clock=clock.monotonic)
    now = clock.monotonic()
    presence.sink("5A:00:00:00:00:01", ibeacon_adv(1, 8), now)  # another minor
    presence.sink("5A:00:00:00:00:02", ibeacon_adv(3, 7), now)  # another major
    other = "e2c56db5-dffb-48d2-b060-d0f5a71096e0"
    presence.sink("5A:00:00:00:00:03", ibeacon_adv(1, 7, uuid=other), now)  # another UUID
    assert presence.occupancy() == {"badges": 0}
    presence.sink("5A:00:00:00:00:04", ibeacon_adv(1, 7), now)
    presence.sink("6B:00:00:00:00:05", ibeacon_adv(2, 99), now)  # major 2, any minor
    assert presence.occupancy() == {"badges": 2}
    # A phone changes its address; the same iBeacon is still one person.
    presence.sink("7C:00:00:00:00:06", ibeacon_adv(1, 7), now)
    assert presence.occupancy() == {"badges": 2}
    # Truncated Apple data (another Apple advertisement type) is not an iBeacon.
    short = advertisement(rssi=-50, manufacturer_data={ble_frames.APPLE_COMPANY: b"\x02\x15"})
    presence.sink("5A:00:00:00:00:07", short, now)


def test_occupancy_is_published_on_change_at_once_and_otherwise_every_interval() -> None:
    clock = FakeClock()
    presence = Presence([group()], clock=clock.monotonic)
    assert [(r.group, r.occupancy, r.changed) for r in presence.tick()] == [("badges", 0, True)]
    clock.advance(10)
    assert presence.tick() == []
    presence.sink(BADGE_1, badge_adv(-60), clock.monotonic())
    assert [(r.occupancy, r.changed) for r in presence.tick()] == [(1, True)]
    clock.advance(29)
    assert presence.tick() == []
    clock.advance(1)
    assert [(r.occupancy, r.changed) for r in presence.tick()] == [(1, False)]


def test_presence_through_the_real_scanner_sink() -> None:
    badge = IBeacon(BADGE_1, UUID, 1, 7, every=0.05, rssi=-60)
    radio = SimRadio([badge])
    presence = Presence([group(beacons=(BeaconConfig(uuid=UUID, major=1, minor=7),))])
    scanner = SharedScanner(wanted=[], patterns=patterns_for(["ibeacon"]),
                            backend=radio.backend(), stall_timeout=0)  # fmt: skip
    scanner.sinks.append(presence.sink)

    async def main() -> None:
        task = asyncio.ensure_future(scanner.run())
        deadline = time.monotonic() + 5
        while presence.occupancy()["badges"] == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert presence.occupancy() == {"badges": 1}
    assert scanner.stats().dropped >= 1  # no device wants the badge: presence saw it anyway


# The room's control with presence alongside the PIR -------------------------------------------

CONTROL = """
[node]
id = "r"
state_dir = "state"
[[relays]]
name = "lights"
pin = 23
kind = "light"
[[inputs]]
name = "pir"
pin = 4
kind = "motion"
[[lights]]
name = "chamber"
relays = ["lights"]
occupancy = ["pir", "badges"]
vacancy_minutes = 5
[ble]
[[ble.presence]]
name = "badges"
beacons = ["C8:FD:19:00:00:01"]
window = 60
"""


class Room:
    def __init__(self, tmp_path: Path, text: str = CONTROL) -> None:
        path = tmp_path / "room.toml"
        path.write_text(text)
        cfg = config_mod.load(path)
        self.clock = FakeClock()
        self.pins = MockFactory()
        self.presence = Presence(cfg.ble.presence, clock=self.clock.monotonic)
        self.known = True  # whether the BLE scan is running (BleService.occupied says None)
        self.room = RoomController(cfg.control, self.pins, self.clock,
                                   StateStore(tmp_path / "control.json"), lambda d, q: None,
                                   self.occupied)  # fmt: skip

    def occupied(self) -> dict[str, Optional[bool]]:
        return {n: (c > 0 if self.known else None) for n, c in self.presence.occupancy().items()}

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.clock.advance(1)
            self.room.tick()

    def lights_on(self) -> bool:
        return self.pins.pin(23).state is False  # active-low relay board


def test_a_badge_in_the_room_keeps_the_lights_on_without_motion(tmp_path: Path) -> None:
    room = Room(tmp_path)
    room.run(2)
    assert not room.lights_on() and room.room.occupied() is False
    room.presence.sink(BADGE_1, badge_adv(-60), room.clock.monotonic())
    room.run(1)
    assert room.lights_on() and room.room.occupied() is True
    for _ in range(20):  # twenty minutes of a still audience: no motion, the badge heard
        room.presence.sink(BADGE_1, badge_adv(-60), room.clock.monotonic())
        room.run(60)
    assert room.lights_on()
    room.run(61)  # the badge left a minute ago (window 60 s)
    assert not room.lights_on() and room.room.occupied() is False


def test_motion_alone_still_works_and_unknown_presence_is_no_evidence(tmp_path: Path) -> None:
    room = Room(tmp_path)
    room.known = False  # the BLE scan is down
    room.pins.pin(4).drive_high()
    room.run(1)
    assert room.lights_on() and room.room.occupied() is True
    room.pins.pin(4).drive_low()
    room.run(5 * 60 + 2)  # the light group's vacancy_minutes
    assert not room.lights_on()
    room.run(10 * 60)  # the room's: 15 minutes without motion (agent/control/room.py)
    assert room.room.occupied() is False


def test_a_room_with_presence_and_no_pir_knows_occupancy_from_presence(tmp_path: Path) -> None:
    text = CONTROL.replace('occupancy = ["pir", "badges"]', 'occupancy = ["badges"]')
    text = text.replace('[[inputs]]\nname = "pir"\npin = 4\nkind = "motion"\n', "")
    room = Room(tmp_path, text)
    assert room.room.occupied() is False
    room.presence.sink(BADGE_1, badge_adv(-60), room.clock.monotonic())
    assert room.room.occupied() is True
    room.known = False
    assert room.room.occupied() is None


# Presence config --------------------------------------------------------------------------------


def test_presence_config(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text(CONTROL)
    (g,) = config_mod.load(path).ble.presence
    assert (g.name, g.window, g.rssi_min, g.interval) == ("badges", 60.0, -80, 30.0)
    assert g.beacons == (BeaconConfig(address=BADGE_1),)


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ('beacons = ["C8:FD:19:00:00:01"]', "beacons = []",
         "ble.presence[0].beacons: a presence group needs at least one beacon"),
        ('beacons = ["C8:FD:19:00:00:01"]', 'beacons = ["C8:FD:19:00:00"]',
         "ble.presence[0].beacons[0].address: must be a MAC address"),
        ('beacons = ["C8:FD:19:00:00:01"]', 'beacons = [{uuid = "nope"}]',
         "ble.presence[0].beacons[0].uuid: must be a UUID"),
        ('beacons = ["C8:FD:19:00:00:01"]', f'beacons = [{{uuid = "{UUID}", minor = 1}}]',
         "ble.presence[0].beacons[0].minor: needs major too"),
        ('beacons = ["C8:FD:19:00:00:01"]', f'beacons = [{{uuid = "{UUID}", major = 70000}}]',
         "ble.presence[0].beacons[0].major: must be 0..65535"),
        ('beacons = ["C8:FD:19:00:00:01"]', 'beacons = [{address = "C8:FD:19:00:00:01", '
         "major = 1}]", "ble.presence[0].beacons[0].major: only for a beacon given by its"),
        ('beacons = ["C8:FD:19:00:00:01"]', 'beacons = ["C8:FD:19:00:00:01", '
         '"c8:fd:19:00:00:01"]',
         "ble.presence[0].beacons: C8:FD:19:00:00:01 is listed twice ([0] and [1])"),
        ("window = 60", "window = 0", "ble.presence[0].window: must be more than 0"),
        ("window = 60", "rssi_min = -200", "ble.presence[0].rssi_min: must be -127..20 dBm"),
        ('occupancy = ["pir", "badges"]', 'occupancy = ["pir", "badgez"]',
         "lights[0].occupancy[1]: 'badgez' is not an input or a presence source"),
        ('name = "badges"', 'name = "pir"',
         "inputs: 'pir' names both an input and a BLE presence group"),
    ],
)  # fmt: skip
def test_bad_presence_config_names_the_key(
    tmp_path: Path, replace: str, by: str, message: str
) -> None:
    assert replace in CONTROL
    path = tmp_path / "n.toml"
    path.write_text(textwrap.dedent(CONTROL.replace(replace, by, 1)))
    with pytest.raises(ConfigError) as e:
        config_mod.load(path)
    assert message in str(e.value)


def test_presence_is_known_once_the_scan_has_listened_and_unknown_when_it_is_down(
    tmp_path: Path,
) -> None:
    """The BLE service with the real scanner on the simulated air: a group's availability
    follows the scan, with the settling time and the window of the docs."""
    from agent.common.clock import SystemClock
    from agent.config.ble import BleConfig
    from agent.sensing.ble.service import BleService

    radio = SimRadio([IBeacon(BADGE_1, UUID, 1, 7, every=0.05, rssi=-60)])
    config = BleConfig(presence=(group(window=0.4, interval=60.0),), stall_timeout=0)
    events: list[tuple[float, str, bool, Optional[str]]] = []
    samples: list[tuple[float, dict[str, Any]]] = []
    start = time.monotonic()

    async def on_availability(name: str, up: bool, reason: Optional[str]) -> None:
        events.append((time.monotonic() - start, name, up, reason))

    async def on_sample(sample: Any) -> None:
        samples.append((time.monotonic() - start, dict(sample.values)))

    service = BleService(config, SystemClock("synced"), tmp_path, on_sample, on_availability,
                         backend=radio.backend(), reset_adapter=radio.reset_adapter,
                         tick=0.02, backoff_min=0.05)  # fmt: skip
    service.scanner.stall_timeout, service.scanner.reset_after = 0.1, 0  # test time scales

    async def main() -> None:
        task = asyncio.ensure_future(service.run())
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert service.occupied() == {"badges": True}
        # BlueZ loses the adapter: the scan stalls and cannot start again.
        radio.silent, radio.powered = True, False
        while len(events) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert service.occupied() == {"badges": None}  # unknown, not "nobody"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    (t_up, name, up, _), (t_down, _, down, reason) = events
    assert (name, up, down) == ("badges", True, False)
    assert t_up >= 0.4  # the scan listened for the window before a count was published
    assert "org.bluez.Error.NotReady" in (reason or "")
    assert samples and samples[0][0] >= t_up and samples[0][1] == {"occupancy": 1}
    # Through the outage the count held (the badge was not heard, but nobody left), and
    # nothing at all was published once presence was unknown.
    assert all(v == {"occupancy": 1} and t <= t_down for t, v in samples), samples
