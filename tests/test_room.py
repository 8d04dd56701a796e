"""A room under control: the thermostat, lights and ventilation driving real gpiozero mock pins
through the relay bank's safety rules, hours of behaviour in milliseconds on a FakeClock."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Callable, Optional

import pytest
from gpiozero.pins.mock import MockFactory

from agent.common.events import Event
from agent.common.state_store import StateStore
from agent.config import schema as config_mod
from agent.config.schema import ConfigError
from agent.control.room import RoomController
from tests.clocks import FakeClock
from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber

NODE = '[node]\nid = "r"\nstate_dir = "state"\n'
DEVICES = """
[[devices]]
name = "climate"
driver = "bme280"
interval = 5
[[devices]]
name = "co2"
driver = "scd4x"
interval = 5
[[devices]]
name = "light"
driver = "veml7700"
interval = 5
"""
CONTROL = """
[[relays]]
name = "heater"
pin = 17
kind = "heat"
rated_power_w = 2000
interlock = "hvac"
min_off = 180
[[relays]]
name = "cooler"
pin = 27
kind = "cool"
interlock = "hvac"
[[relays]]
name = "fan"
pin = 22
kind = "ventilation"
[[relays]]
name = "lights"
pin = 23
kind = "light"
[[inputs]]
name = "pir"
pin = 4
kind = "motion"
[[zones]]
name = "chamber"
sensor = "climate"
heat = ["heater"]
cool = ["cooler"]
comfort = 21.0
eco = 17.0
boost = 23.0
stale_after = 300
[[lights]]
name = "chamber"
relays = ["lights"]
occupancy = ["pir"]
daylight_sensor = "light"
[[ventilation]]
name = "chamber"
relays = "fan"
co2_sensor = "co2"
[[scenes]]
name = "closed"
[scenes.targets]
"lights:chamber" = "off"
"zone:chamber" = "eco"
"""

PINS = {"heater": 17, "cooler": 27, "fan": 22, "lights": 23}


class Room:
    def __init__(self, tmp_path: Path, control: str = CONTROL) -> None:
        path = tmp_path / "room.toml"
        path.write_text(NODE + DEVICES + control)
        self.config = config_mod.load(path)
        self.clock = FakeClock()
        self.pins = MockFactory()
        self.values: dict[tuple[str, str], tuple[float, float]] = {}
        self.events: list[Event] = []
        store = StateStore(tmp_path / "control.json")
        self.room = RoomController(self.config.control, self.pins, self.clock, store, self.read)

    def read(self, device: str, quantity: str) -> Optional[tuple[float, float]]:
        return self.values.get((device, quantity))

    def measure(self, device: str, quantity: str, value: float) -> None:
        self.values[(device, quantity)] = (value, self.clock.monotonic())

    def run(self, seconds: float, every: float = 1.0) -> None:
        for _ in range(int(seconds / every)):
            self.clock.advance(every)
            self.events += self.room.tick()

    def on(self, relay: str) -> bool:
        # Relay boards are active-low by default: the pin is driven low to energise the coil.
        return self.pins.pin(PINS[relay]).state is False


def test_heats_when_cold_and_fails_safe_when_the_sensor_dies(tmp_path: Path) -> None:
    room = Room(tmp_path)
    room.measure("climate", "temperature", 19.0)  # comfort 21 − 0.25: heat
    room.run(2)
    assert room.on("heater") and not room.on("cooler")
    why = [e.reason for e in room.events if e.subject == "heater" and e.state == "on"]
    assert why and "19.00 °C" in why[0] and "sensor climate" in why[0]
    # The sensor stops answering: its last reading ages. Within stale_after (300 s) plus one
    # tick the heater must be off, with an alarm saying why.
    room.run(297)  # the reading is 299 s old
    assert room.on("heater")
    room.run(2)  # 301 s
    assert not room.on("heater")
    alarms = [e for e in room.events if e.kind == "alarm"]
    assert alarms and alarms[0].state == "stale" and "climate" in alarms[0].reason
    # Good readings return: heating resumes by itself once min_off (180 s) has passed.
    room.measure("climate", "temperature", 19.0)
    room.run(1)
    assert not room.on("heater")  # still within min_off
    for _ in range(200):
        room.measure("climate", "temperature", 19.0)
        room.run(1)
    assert room.on("heater")
    assert any(e.state == "resolved" for e in room.events if e.kind == "alarm")


def test_lights_follow_occupancy_and_ventilation_follows_co2(tmp_path: Path) -> None:
    room = Room(tmp_path)
    room.measure("climate", "temperature", 21.0)
    room.measure("light", "illuminance", 50.0)  # dark: occupancy may switch the lights on
    room.measure("co2", "co2", 600.0)
    room.run(2)
    assert not room.on("lights") and not room.on("fan")
    room.pins.pin(4).drive_high()  # PIR: someone walks in
    room.run(1)
    assert room.on("lights")
    room.pins.pin(4).drive_low()
    for _ in range(14):  # 14 minutes without motion: still on (vacancy 15 min)
        room.measure("light", "illuminance", 50.0)
        room.measure("co2", "co2", 600.0)
        room.run(60)
    assert room.on("lights")
    room.measure("light", "illuminance", 50.0)
    room.measure("co2", "co2", 600.0)
    room.run(61)
    assert not room.on("lights")
    room.measure("co2", "co2", 1200.0)  # above 1000 ppm
    room.run(1)
    assert room.on("fan")
    room.measure("co2", "co2", 700.0)  # below 800, but the fan runs at least 10 minutes
    room.run(1)
    assert room.on("fan")
    for _ in range(10):
        room.measure("co2", "co2", 700.0)
        room.run(60)
    assert not room.on("fan")


def test_a_scene_and_the_safe_state(tmp_path: Path) -> None:
    room = Room(tmp_path)
    room.measure("climate", "temperature", 19.0)
    room.run(2)
    assert room.on("heater")
    events = room.room.apply_scene("closed", "test")
    assert any(e.kind == "scene" for e in events)
    room.run(2)
    assert room.room.zones["chamber"].effective_mode() == "eco"
    assert not room.on("heater")  # 19 °C is warm enough for eco 17
    room.measure("climate", "temperature", 15.0)
    room.run(200)
    assert room.on("heater")
    room.room.safe_state("agent stopping")
    assert not any(room.on(r) for r in PINS)


def test_energy_is_rated_power_times_time_on(tmp_path: Path) -> None:
    room = Room(tmp_path)
    for _ in range(90):  # 90 minutes of a 2000 W heater: 3 kWh
        room.measure("climate", "temperature", 15.0)
        room.run(60)
    assert room.room.energy_kwh()["heater"] == pytest.approx(3.0, abs=2000 / 3600 / 1000 * 2)


BAD = [
    # The header model names the second claim of the pin, at its own key (issue 18).
    (CONTROL.replace("pin = 27", "pin = 17"), "relays[1].pin: GPIO 17 is already taken by relay"),
    (CONTROL.replace("stale_after = 300", "deadband = 0"), "zones[0].deadband"),
    (
        CONTROL.replace("boost = 23.0", 'boost = 23.0\nschedule = ["mon-fri 25:00 comfort"]'),
        "zones[0].schedule",
    ),
    (CONTROL.replace('heat = ["heater"]', 'heat = ["radiator"]'), "no relay 'radiator'"),
    (
        CONTROL.replace('relays = "fan"', 'relays = "lights"'),
        "relay 'lights' is already controlled by lights 'chamber'",
    ),
    (
        CONTROL.replace('sensor = "climate"', 'sensor = "co2x"'),
        "zones[0].sensor: no device 'co2x' measuring temperature",
    ),
    (CONTROL + '[control]\ncolour = "red"\n', "control.colour: unknown key"),
]


@pytest.mark.parametrize("control,message", BAD, ids=[m for _, m in BAD])
def test_bad_control_config_names_the_key(tmp_path: Path, control: str, message: str) -> None:
    path = tmp_path / "room.toml"
    path.write_text(NODE + DEVICES + textwrap.dedent(control))
    with pytest.raises(ConfigError) as info:
        config_mod.load(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), str(info.value)


def test_the_agent_publishes_why_and_stops_in_the_safe_state(
    tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
) -> None:
    """The whole path: a simulated room too cold for its comfort setpoint, the agent as a
    subprocess, a real mosquitto. The heater's retained state says why it is on; on SIGTERM it
    goes to its safe state (off) and says so before the agent goes offline."""
    control = """
        [[relays]]
        name = "heater"
        pin = 17
        kind = "heat"
        rated_power_w = 1500
        [[zones]]
        name = "chamber"
        sensor = "climate"
        heat = ["heater"]
        comfort = 30.0
        eco = 30.0
        boost = 30.0
    """
    sub = Subscriber(broker.port, "roomagent/test-node/#")
    agent = agent_process(node_config(broker.port, tmp_path / "state") + textwrap.dedent(control))
    agent.start()
    try:
        assert sub.wait_for(lambda ms: any(m.topic.endswith("/relay/heater") for m in ms)), (
            agent.output()
        )
        # Retained from the first second (issue 17): off as it powered on, then on with why.
        start = json.loads(sub.on("/relay/heater")[0].payload)
        assert start["on"] is False and start["reason"] == "current state"
        assert sub.wait_for(lambda ms: len(sub.on("/relay/heater")) > 1), agent.output()
        first = json.loads(sub.on("/relay/heater")[1].payload)
        assert first["on"] is True and "comfort 30.0" in first["reason"]
        assert first["reason"].endswith("(sensor climate)")

        def heater_event(ms: object) -> bool:
            events = [json.loads(m.payload) for m in sub.on("/events")]
            return any(e["kind"] == "relay" and e["subject"] == "heater" for e in events)

        assert sub.wait_for(heater_event, 10)  # events come through the buffer, just behind
        assert agent.terminate() == 0
        assert sub.wait_for(lambda ms: json.loads(sub.on("/relay/heater")[-1].payload)["on"]
                            is False, 5)  # fmt: skip
        last = json.loads(sub.on("/relay/heater")[-1].payload)
        assert "agent stopping" in last["reason"]
        statuses = [m.payload for m in sub.on("/status")]
        assert statuses[-1] == b"offline"
    finally:
        sub.close()
