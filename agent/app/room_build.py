"""The room's control (agent.control.room) on the node: built for a config and wired to the
node (readings and presence from the parts of the moment, switch events to the node, and,
when simulated, the simulated meters drawing what the relays switch), and its loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Callable, Optional

from agent.control.room import RoomController

if TYPE_CHECKING:
    from agent.common.clock import SystemClock
    from agent.common.events import Event
    from agent.common.state_store import StateStore
    from agent.config.schema import Config
    from agent.node.ports import NodeParts
    from agent.sensing.bus_choice import Hardware

log = logging.getLogger("roomagent")
CONTROL_SECONDS = 1.0


def build_room(
    config: Config, previous: Optional[RoomController], *, hardware: Hardware,
    clock: SystemClock, store: StateStore, parts: Callable[[], NodeParts],
    emit: Callable[[Event], None],
) -> RoomController:  # fmt: skip
    """`previous`: the controller being replaced (a reconfiguration), whose relays and inputs
    on unchanged pins carry on (RoomController)."""

    def reading(device: str, quantity: str) -> Optional[tuple[float, float]]:
        return parts().reading(device, quantity)  # the parts of the moment

    def presence() -> Mapping[str, Optional[bool]]:  # the BLE service of the moment
        ble = parts().ble
        return ble.occupied() if ble is not None else {}

    if config.control.relays or config.control.inputs:
        choice = hardware.pin_choice()
        (log.warning if choice.error else log.info)("GPIO pins: %s", choice.describe())
    room = RoomController(config.control, hardware.pin_factory(), clock, store, reading,
                          presence=presence, previous=previous)  # fmt: skip
    for event in room.startup_events:
        emit(event)
    if hardware.room is not None:  # simulated meters draw what the relays switch
        rated = {r.name: r.rated_power_w for r in config.control.relays}
        hardware.room.relay_load = lambda: sum(
            w for name, w in rated.items() if room.relays.state(name)
        )
    return room


async def run_control(
    parts: Callable[[], NodeParts], *, simulate_inputs: Optional[Callable[[Config], None]],
    emit: Callable[[Event], None], publish_states: Callable[[], None],
    publish_energy: Callable[[], None],
) -> None:  # fmt: skip
    """The room's control loop, once a second, for as long as the node has room control; it
    never stops on an error of its own. Each second works on one look at the parts."""
    beats = 0
    while True:
        now = parts()
        if now.room is None:
            return
        try:
            if simulate_inputs is not None:
                simulate_inputs(now.config)
            for event in now.room.tick():
                emit(event)
            publish_states()
            beats += 1
            if beats % max(1, int(now.config.node.health_interval)) == 0:
                publish_energy()
        except Exception:
            log.exception("room control failed this second; carrying on")
        await asyncio.sleep(CONTROL_SECONDS)
