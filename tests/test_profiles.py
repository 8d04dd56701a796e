"""The room profiles in firmware_configs/: each loads, its header comment describes the wiring
it really configures, and it runs a room: the control on gpiozero's mock pins, the sensors on
their simulated chips (through the doctor, as an installer would check them)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import pytest
from gpiozero.pins.mock import MockFactory

from agent.common.state_store import StateStore
from agent.config import schema as config_mod
from agent.config.schema import Config
from agent.control.room import RoomController
from agent.pi import header
from agent.sensing.bus_choice import Hardware
from agent.tools.doctor import run
from agent.tools.doctor_checks import Host
from agent.tools.doctor_hardware import pin_conflicts
from drivers import DRIVERS, values_of
from tests.clocks import FakeClock
from tests.conftest import REPO
from tests.mqtt_fixtures import free_port

CONFIGS = sorted((REPO / "firmware_configs").glob("*.toml"))
PROFILES = [p for p in CONFIGS if p.name != "demo.toml"]
ROOMS = {"council-chamber.toml", "meeting-room.toml", "multimedia-space.toml", "office.toml"}


def test_the_rooms_the_issue_asks_for_are_there() -> None:
    assert {p.name for p in PROFILES} >= ROOMS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads(path: Path) -> None:
    cfg = config_mod.load(path)
    assert cfg.node.id


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_a_profile_is_for_a_real_pi(path: Path) -> None:
    cfg = config_mod.load(path)
    assert not cfg.node.simulate
    assert pin_conflicts(cfg, None) == []
    # A room profile is installed as /etc/roomagent/roomagent.toml: no paths relative to it.
    assert cfg.node.state_dir == Path("/var/lib/roomagent")


PIN_LINE = re.compile(r"^#\s+pin (\d+)\s+GPIO(\d+)\s+(relay|input) ([\w-]+):", re.M)
CHIP_LINE = re.compile(r"^#\s+0x([0-9a-f]{2})\s+(\w+)\s+([\w-]+):", re.M)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_the_header_comment_is_the_wiring_configured(path: Path) -> None:
    text = path.read_text()
    comment = text[: text.index("\n[")]
    cfg = config_mod.load(path)
    pins = {("relay", r.name): r.pin for r in cfg.control.relays}
    pins.update({("input", i.name): i.pin for i in cfg.control.inputs})
    described = {}
    for physical, gpio, kind, name in PIN_LINE.findall(comment):
        assert header.physical(int(gpio)) == int(physical), f"GPIO{gpio} is not pin {physical}"
        described[(kind, name)] = int(gpio)
    assert described == pins
    chips = {(d.name, d.driver, d.address or DRIVERS[d.driver].default_address)
             for d in cfg.devices}  # fmt: skip
    assert {(n, drv, int(a, 16)) for a, drv, n in CHIP_LINE.findall(comment)} == chips


# Running the room --------------------------------------------------------------------------

# A cold, stuffy, dark room at 10:00 on a Wednesday in January: every profile's schedule says
# comfort then, so each zone must heat, each ventilation run its top stage, each light group
# with occupancy come on at the first motion.
WEDNESDAY_10 = datetime.fromisoformat("2026-01-14T10:00:00+00:00").timestamp()  # GMT in winter
READINGS = {"temperature": 17.0, "humidity": 45.0, "pressure": 1013.0, "co2": 1300.0,
            "voc_index": 100.0, "illuminance": 30.0, "pm1_0": 3.0, "pm2_5": 5.0, "pm10": 7.0,
            "voltage": 24.0, "current": 2.0, "power": 48.0}  # fmt: skip


class Room:
    def __init__(self, cfg: Config, tmp_path: Path) -> None:
        self.cfg, self.clock, self.pins = cfg, FakeClock(wall=WEDNESDAY_10), MockFactory()
        self.measures = {d.name: DRIVERS[d.driver].quantities for d in cfg.devices}
        store = StateStore(tmp_path / "control.json")
        self.room = RoomController(cfg.control, self.pins, self.clock, store, self.read)
        self.groups: dict[str, list[str]] = {}
        for r in cfg.control.relays:
            if r.interlock:
                self.groups.setdefault(r.interlock, []).append(r.name)

    def read(self, device: str, quantity: str) -> Optional[tuple[float, float]]:
        if quantity not in self.measures.get(device, ()):
            return None
        return READINGS[quantity], self.clock.monotonic()

    def on(self, relay: str) -> bool:
        config = next(r for r in self.cfg.control.relays if r.name == relay)
        return bool(self.pins.pin(config.pin).state) == config.active_high

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.clock.advance(1)
            self.room.tick()
            for group, members in self.groups.items():
                assert sum(self.on(m) for m in members) <= 1, f"interlock {group} broken"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_the_profile_runs_a_room(path: Path, tmp_path: Path) -> None:
    cfg = config_mod.load(path)
    room = Room(cfg, tmp_path)
    c = cfg.control
    for i in c.inputs:
        if i.kind == "motion":
            room.pins.pin(i.pin).drive_high()  # someone in the room
    room.run(5)
    for zone in c.zones:
        assert room.on(zone.heat_stages[0]), f"zone {zone.name}: 17 °C in comfort, no heat"
        assert not any(room.on(r) for r in zone.cool_stages)
    for v in c.ventilation:
        top = v.stages[-1]
        assert room.on(top) and not any(room.on(r) for r in v.stages[:-1]), v.name
    for light in c.lights:
        assert all(room.on(r) == bool(light.occupancy) for r in light.relays), light.name
    for scene in c.scenes:
        events = room.room.apply_scene(scene.name, "test")
        assert events and events[0].kind == "scene", scene.name
        room.run(3)
    room.room.safe_state("test")
    for r in c.relays:
        assert not room.on(r.name) or r.safe_state == "on", r.name
    room.room.close()


def fake_pi(root: Path) -> Host:
    return Host(root=root, clock_synced=lambda: True, systemctl=lambda args: None,
                service_ids=lambda: None)  # fmt: skip


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_the_profiles_chips_answer_the_doctor_in_simulation(path: Path, tmp_path: Path) -> None:
    # On this machine: its own state directory, and a broker address that fails at once
    # rather than a name lookup on the network.
    text = path.read_text().replace("[node]\n", f'[node]\nstate_dir = "{tmp_path}"\n', 1)
    text = text.replace('host = "mqtt.example.org"', f'host = "127.0.0.1"\nport = {free_port()}')
    copy = tmp_path / path.name
    copy.write_text(text)
    report = run(copy, simulate=True, host=fake_pi(tmp_path))
    by_name: dict[str, Any] = {r.name: r for r in report.results}
    cfg = config_mod.load(path)
    for d in cfg.devices:
        assert by_name[f"sensor {d.name}"].ok is True, by_name[f"sensor {d.name}"]
    assert by_name["gpio"].ok is True and by_name["config"].ok is True


def test_a_simulated_power_monitor_sits_on_the_shunt_its_config_describes() -> None:
    # During a meeting the simulated lighting draws 1.8 A; through a 10 mΩ shunt that is 18 mV,
    # well inside an INA226's ±81.92 mV. A simulated chip on another resistor than the one the
    # driver is told about saturates, or reads a wrong current.
    monitors = 0
    for path in PROFILES:
        cfg = config_mod.load(path)
        hardware = Hardware(cfg.devices, simulate=True)
        hardware.room.clock = lambda: 14 * 3600 + 3 * 60.0  # 14:03, three minutes into a meeting
        drawn = hardware.room.environment().current
        assert hardware.room.occupied() and drawn > 1.5
        for d in cfg.devices:
            if d.driver in ("ina219", "ina226"):
                driver = DRIVERS[d.driver](hardware.bus(d.bus), d.address, **d.options)
                driver.open()
                current = values_of(driver.read())["current"]
                assert current == pytest.approx(drawn, abs=0.05), f"{path.name}: {d.name}"
                monitors += 1
    assert monitors >= 1  # the council chamber meters its lighting
