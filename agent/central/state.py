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

from agent.control.room import PUBLISHED
from agent.mqtt.contract import Topics

if TYPE_CHECKING:
    from agent.control.room import RoomController


def room_states(
    room: RoomController, topics: Topics, grid_factor: float
) -> dict[str, dict[str, Any]]:
    """topic -> body (without "ts", so an unchanged state compares equal) of everything but
    the relays: each input and control as it declares (agent.control.room.PUBLISHED), and the
    energy counters."""
    states: dict[str, dict[str, Any]] = {}
    for published in PUBLISHED:
        for item in getattr(room.config, published.section):
            states[topics.control(published.kind, item.name)] = published.state(room, item.name)
    states[topics.energy_state] = energy_body(room, grid_factor)
    return states


def relay_body(on: bool, reason: str) -> dict[str, Any]:
    return {"on": on, "reason": reason}


def energy_body(room: RoomController, grid_factor: float) -> dict[str, Any]:
    kwh = {r.name: round(room.relays.saved_energy_wh(r.name) / 1000.0, 4)
           for r in room.config.relays}  # fmt: skip
    total = round(sum(kwh.values()), 4)
    return {"relays_kwh": kwh, "total_kwh": total, "co2e_kg": round(total * grid_factor, 4)}


# cmd/state/<kind>/<name>'s kinds: the relays, each published kind of control, the devices.
STATE_KINDS = ("relay", *(p.kind for p in PUBLISHED), "device", "energy")


def topic_of(topics: Topics, kind: str, name: Optional[str]) -> Optional[str]:
    """`cmd/state/<kind>/<name>`'s topic, or None for a kind there is none of."""
    if kind == "energy":
        return topics.energy_state if name is None else None
    if name is None or kind not in STATE_KINDS:
        return None
    if kind == "relay":
        return topics.relay(name)
    if kind == "device":
        return topics.state(name)
    return topics.control(kind, name)
