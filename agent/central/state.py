"""What central systems see of a room: the retained state of every input, zone, light group,
ventilation unit and the energy counters, computed from the room controller at any moment.

The runtime publishes these from the first second (before anything changes), whenever one
changes, on every (re)connect, on `cmd/reannounce`, on Home Assistant's birth message, and after
every command that targets one (even a command that changed nothing). Relays carry the reason
of their last switch and are kept by the runtime from the events; see `relay_body`.

Energy is published from what the relay bank has made durable, never from the running
figure: after a power cut the counter resumes from the saved value, so a consumer that saw the
published value never sees it go down (Home Assistant's `total_increasing` would read a drop as
a meter reset).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from agent.central.ha_discovery import input_topic, lights_topic, ventilation_topic, zone_topic
from agent.mqtt.contract import Topics
from drivers.quantities import QUANTITIES

if TYPE_CHECKING:
    from agent.control.room import RoomController


def room_states(
    room: RoomController, topics: Topics, grid_factor: float
) -> dict[str, dict[str, Any]]:
    """topic -> body (without "ts", so an unchanged state compares equal) of everything but
    the relays."""
    base = topics.base
    states: dict[str, dict[str, Any]] = {}
    for inp in room.config.inputs:
        states[input_topic(base, inp.name)] = {"state": room.inputs.state(inp.name)}
    for name in room.zones:
        states[zone_topic(base, name)] = zone_body(room, name)
    for name in room.lights:
        states[lights_topic(base, name)] = lights_body(room, name)
    for name in room.ventilation:
        states[ventilation_topic(base, name)] = ventilation_body(room, name)
    states[topics.energy_state] = energy_body(room, grid_factor)
    return states


def relay_body(on: bool, reason: str) -> dict[str, Any]:
    return {"on": on, "reason": reason}


def zone_body(room: RoomController, name: str) -> dict[str, Any]:
    zone = room.zones[name]
    mode = zone.current_mode()
    return {
        "mode": mode,
        "hvac": "off" if mode == "off" else zone.hvac,
        "setpoint": zone.effective_setpoint(),
        "action": room.zone_action(name),
        # At the sensor's published precision: the raw compensated float changes every reading,
        # and each change is a retained publish.
        "temperature": _rounded(room.zone_temperature(name), QUANTITIES["temperature"].decimals),
    }


def _rounded(value: Optional[float], decimals: int) -> Optional[float]:
    return None if value is None else round(value, decimals)


def lights_body(room: RoomController, name: str) -> dict[str, Any]:
    """`on`: the group's relays (they all follow the group: the first speaks for them);
    `mode`: manual while an override (command, wall switch, scene) holds, else auto."""
    light = room.lights[name]
    override = light.override
    manual = override is not None and room.clock.monotonic() < override.until
    return {"on": room.relays.state(light.config.relays[0]), "mode": "manual" if manual else "auto"}


def ventilation_body(room: RoomController, name: str) -> dict[str, Any]:
    """`stage`: what the relays do now (0 off, 1, 2); `mode`: auto, boost or manual."""
    vent = room.ventilation[name]
    stages = vent.config.stages
    stage = next((i + 1 for i, r in enumerate(stages) if room.relays.state(r)), 0)
    return {"on": stage > 0, "stage": stage, "stages": len(stages), "mode": vent.mode()}


def energy_body(room: RoomController, grid_factor: float) -> dict[str, Any]:
    kwh = {r.name: round(room.relays.saved_energy_wh(r.name) / 1000.0, 4)
           for r in room.config.relays}  # fmt: skip
    total = round(sum(kwh.values()), 4)
    return {"relays_kwh": kwh, "total_kwh": total, "co2e_kg": round(total * grid_factor, 4)}


def topic_of(topics: Topics, kind: str, name: Optional[str]) -> Optional[str]:
    """`cmd/state/<kind>/<name>`'s topic, or None for a kind there is none of."""
    base = topics.base
    if kind == "energy":
        return topics.energy_state if name is None else None
    if name is None:
        return None
    makers = {
        "relay": topics.relay,
        "input": lambda n: input_topic(base, n),
        "zone": lambda n: zone_topic(base, n),
        "lights": lambda n: lights_topic(base, n),
        "ventilation": lambda n: ventilation_topic(base, n),
        "device": topics.state,
    }
    maker = makers.get(kind)
    return maker(name) if maker is not None else None


STATE_KINDS = ("relay", "input", "zone", "lights", "ventilation", "device", "energy")
