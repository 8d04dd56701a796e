"""The node's retained MQTT state: what a central system (or Home Assistant) must find on the
broker at any time, kept here so that every (re)connection can publish it all again.

- each device's state (`<base>/state/<device>`, and the agent's health as device "agent");
- each relay's state (`<base>/relay/<name>`), from its switch events and the bank's states;
- every input, zone, light group, ventilation unit, the room's and the faults' states
  (agent.central.state), published when they change;
- the node's info document and the Home Assistant discovery document.
None of these goes through the durable buffer: only the newest value matters.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent import __version__
from agent.central import ha_discovery as discovery
from agent.central import state as central_state
from agent.common.seq_floor import write_durably
from agent.mqtt.contract import CONTRACT_VERSION, Topics, iso_utc, json_payload
from drivers import DRIVERS, QUANTITIES

if TYPE_CHECKING:
    from agent.common.events import Event
    from agent.config.schema import Config
    from agent.control.room import RoomController
    from agent.mqtt.link import MqttLink

log = logging.getLogger("roomagent")


class RetainedStates:
    """The latest retained payload of every topic this node keeps, and their publishing."""

    def __init__(
        self,
        topics: Topics,
        now: Callable[[], float],
        link: Callable[[], Optional[MqttLink]],
    ) -> None:
        self.topics, self.now, self._link = topics, now, link
        self.devices: dict[str, bytes] = {}  # by device name (and "agent")
        self.relays: dict[str, bytes] = {}  # by relay name
        self.controls: dict[str, bytes] = {}  # input, zone, room, faults states by topic
        self._bodies: dict[str, dict[str, Any]] = {}  # the controls' states, without "ts"

    def publish(self, topic: str, payload: bytes) -> None:
        """Retained, when connected (a reconnection publishes everything again anyway)."""
        link = self._link()
        if link is not None and link.connected:
            link.publish(topic, payload, qos=1, retain=True)

    def set_device(self, entity: str, payload: bytes) -> None:
        self.devices[entity] = payload
        self.publish(self.topics.state(entity), payload)

    def forget_device(self, entity: str) -> None:
        """Clears the retained state of a device that left the config."""
        link = self._link()
        if self.devices.pop(entity, None) is not None and link is not None:
            link.publish(self.topics.state(entity), b"", qos=1, retain=True)

    def retain(self, topic: str, payload: bytes) -> None:
        self.controls[topic] = payload
        self.publish(topic, payload)

    def relay_event(self, event: Event, body: Mapping[str, Any]) -> None:
        """A relay switched (`body`: the event as buffered): its retained state follows."""
        if event.kind == "relay" and event.state in ("on", "off"):
            retained = {"ts": body["ts"], "on": event.state == "on", "reason": event.reason}
            self.relays[event.subject] = json_payload(retained)
            self.publish(self.topics.relay(event.subject), self.relays[event.subject])

    def publish_room(
        self, room: Optional[RoomController], grid_factor: float, force: Optional[str] = None
    ) -> None:
        """Retained state of every relay, input, zone, light group, ventilation unit and the
        energy counters (agent.central.state): each one from the first second, then whenever
        it changes; `force` publishes that topic even unchanged (a command's answer)."""
        if room is None:
            return
        now = iso_utc(self.now())
        for relay, on in room.relays.states().items():
            cached = self.relays.get(relay)
            if cached is None or json.loads(cached).get("on") is not on:
                body = central_state.relay_body(on, "current state")
                self.relays[relay] = json_payload({"ts": now, **body})
                self.publish(self.topics.relay(relay), self.relays[relay])
            elif force == self.topics.relay(relay):
                self.publish(force, cached)
        for topic, body in central_state.room_states(room, self.topics, grid_factor).items():
            if self._bodies.get(topic) != body or topic == force:
                self._bodies[topic] = body
                self.retain(topic, json_payload({"ts": now, **body}))

    def get(self, topic: str) -> Optional[bytes]:
        """The latest retained state published on `topic`, if this node has one."""
        if topic.startswith(self.topics.relay("")):
            return self.relays.get(topic[len(self.topics.relay("")) :])
        if topic.startswith(self.topics.state("")):
            return self.devices.get(topic[len(self.topics.state("")) :])
        return self.controls.get(topic)

    def publish_all(self) -> None:
        """Every state kept, again (after a connection)."""
        for topic, payload in self.controls.items():
            self.publish(topic, payload)
        for entity, payload in self.devices.items():
            self.publish(self.topics.state(entity), payload)
        for relay, payload in self.relays.items():
            self.publish(self.topics.relay(relay), payload)


def info_payload(config: Config, simulated: bool) -> bytes:
    """`<base>/info` (docs/mqtt.md): the contract's version, the node and its devices' units."""
    ble = [{"name": d.name, "address": d.address, "format": d.format} for d in config.ble.devices]
    return json_payload(
        {
            "contract": CONTRACT_VERSION,
            "agent_version": __version__,
            "node": config.node.id,
            "name": config.node.name,
            "simulated": simulated,
            "devices": [
                {
                    "name": d.name,
                    "driver": d.driver,
                    "units": {q: QUANTITIES[q].unit.value for q in DRIVERS[d.driver].quantities},
                }
                for d in config.devices
            ],
            **({"ble_devices": ble} if ble else {}),
        }
    )


def publish_discovery(link: MqttLink, config: Config, ble_quantities: Any) -> None:
    """Publishes the Home Assistant device; components that left the config since the last
    time are removed first (remembered in discovery.last beside the buffer)."""
    topic, payload = discovery.discovery_payload(
        config, __version__, prefix=config.node.discovery_prefix, ble_quantities=ble_quantities
    )
    last = config.node.state_dir / "discovery.last"
    previous = None
    with contextlib.suppress(OSError):
        previous = last.read_bytes()
        removal = discovery.removal_payload(previous, payload)
        if removal is not None:
            link.publish(topic, removal, qos=1, retain=True)
    link.publish(topic, payload, qos=1, retain=True)
    if previous == payload:
        return  # unchanged: a reconnect costs the SD card nothing
    try:
        write_durably(last, payload)
    except OSError as e:
        log.warning("cannot remember the discovery payload: %s", e)
