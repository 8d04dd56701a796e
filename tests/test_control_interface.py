"""Every control rule speaks through one interface (agent.control.types.Control): step() reads
what it needs from the room's inputs of one tick (RoomInputs) and returns its relay wishes and
events. RoomController.tick loops over them; these tests drive each rule through step() alone."""

from __future__ import annotations

from typing import Optional

from agent.common.events import Event
from agent.config.lights import LightConfig
from agent.config.ventilation import VentilationConfig
from agent.config.zones import ZoneConfig
from agent.control.lights import LightControl
from agent.control.thermostat import Thermostat
from agent.control.types import Control, RoomInputs
from agent.control.ventilation import VentilationControl
from tests.clocks import FakeClock


def inputs(clock: FakeClock, values: dict[tuple[str, str], float], asked: list[tuple[str, str]],
           motion: Optional[dict[str, float]] = None, events: tuple[Event, ...] = (),
           presence: Optional[dict[str, Optional[bool]]] = None) -> RoomInputs:  # fmt: skip
    def readings(device: str, quantity: str) -> Optional[tuple[float, float]]:
        asked.append((device, quantity))
        value = values.get((device, quantity))
        return None if value is None else (value, clock.monotonic())

    return RoomInputs(readings, None, (motion or {}).get, presence or {}, events)


def test_a_zone_heats_a_cold_room_from_its_own_sensor() -> None:
    clock = FakeClock()
    zone: Control = Thermostat(
        ZoneConfig("chamber", "climate", comfort=21.0, eco=17.0, boost=23.0,
                   heat_stages=("heat1",)), None, clock,
    )  # fmt: skip
    asked: list[tuple[str, str]] = []
    room = inputs(clock, {("climate", "temperature"): 15.0, ("other", "temperature"): 30.0}, asked)
    wants, _ = zone.step(room)
    assert asked == [("climate", "temperature")]
    assert [(w.relay, w.on) for w in wants] == [("heat1", True)]  # 15 °C is below eco and comfort


def test_ventilation_runs_on_its_co2_sensor_above_co2_on() -> None:
    clock = FakeClock()
    vent: Control = VentilationControl(VentilationConfig("chamber", "fan", "scd41"), clock)
    asked: list[tuple[str, str]] = []
    wants, _ = vent.step(inputs(clock, {("scd41", "co2"): 1400.0}, asked))
    assert asked == [("scd41", "co2")]  # no VOC sensor configured: none read
    assert [(w.relay, w.on) for w in wants] == [("fan", True)]  # 1400 ppm > co2_on 1000


def test_lights_take_motion_presence_and_only_their_own_switch() -> None:
    clock = FakeClock()
    config = LightConfig("chamber", ("lamp",), occupancy=("pir", "badges"), switch="wall")
    lights: Control = LightControl(config, clock)
    asked: list[tuple[str, str]] = []
    # Motion on another group's input does not count; nothing seen: off.
    wants, _ = lights.step(inputs(clock, {}, asked, motion={"hall_pir": clock.monotonic()}))
    assert [(w.relay, w.on) for w in wants] == [("lamp", False)]
    seen = {"pir": clock.monotonic()}  # the input's last motion: the room keeps it
    wants, _ = lights.step(inputs(clock, {}, asked, motion=seen))
    assert [(w.relay, w.on) for w in wants] == [("lamp", True)]
    # A BLE presence group among its occupancy sources is enough on its own.
    other = LightControl(config, clock)
    wants, _ = other.step(inputs(clock, {}, asked, presence={"badges": True}))
    assert [(w.relay, w.on) for w in wants] == [("lamp", True)]
    # Another switch's press is not this group's; its own switch takes it over by hand.
    elsewhere = Event("input", "hall_switch", "pressed", "GPIO 5 went low", clock.time())
    wants, events = lights.step(inputs(clock, {}, asked, motion=seen, events=(elsewhere,)))
    assert events == [] and [(w.relay, w.on) for w in wants] == [("lamp", True)]
    own = Event("input", "wall", "pressed", "GPIO 6 went low", clock.time())
    wants, events = lights.step(inputs(clock, {}, asked, motion=seen, events=(own,)))
    assert [(w.relay, w.on) for w in wants] == [("lamp", False)] and events
    assert asked == []  # no daylight sensor configured: no reading asked for
