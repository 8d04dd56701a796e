"""Home Assistant MQTT discovery: the whole node as one device-based discovery message.

Home Assistant 2024.11 and later accept one retained message on ``<prefix>/device/<node>/config``
that describes a device and all its entities ("components"). What this module relies on, and
where it was checked:

- home-assistant.io, source/_integrations/mqtt.markdown, "Device discovery payload": ``dev`` and
  ``o`` are required at the root; the shared options are availability, ``command_topic``,
  ``state_topic``, ``qos`` and ``encoding``; every component needs ``p`` (its platform), and
  entity components a ``unique_id``. A component is removed by sending it once as ``{"p": ...}``
  and then leaving it out; an empty retained payload removes the whole device.
- home-assistant/core, homeassistant/components/mqtt/discovery.py: the topic must match
  ``TOPIC_MATCHER`` (ids of ``[a-zA-Z0-9_-]``); ``_parse_device_payload`` validates the root;
  a component with nothing but its platform is a removal; ``_merge_common_device_options`` copies
  a root option into a component only where the component does not set it. The component key
  becomes part of the discovery id, which HA splits on spaces: keys here have none.
- .../mqtt/schemas.py: ``DEVICE_DISCOVERY_SCHEMA`` rejects the whole message for an unknown root
  key. ``availability_topic`` and ``availability`` are exclusive, so the root uses the list form:
  a sensor's own ``avty`` list then replaces it instead of clashing with it. ``SHARED_OPTIONS``
  gained ``qos`` only in later releases, so ``qos`` is set on each component as well.
- .../mqtt/abbreviations.py: every key below is a documented abbreviation, or (``qos``,
  ``temp_step``, ``precision``) a key that has none.
- .../mqtt/climate.py: ``preset_modes`` must not contain "none"; HA offers "none" itself and
  publishes it when chosen; ``precision`` is 0.1, 0.5 or 1. .../mqtt/sensor.py and climate.py:
  a template that renders "" is ignored, "None" clears the value.

Entities follow agent/commands/handlers.py: a relay that a zone, light group or ventilation
runs is refused there ("controlled"), so HA shows its state only and commands the owner
(climate per zone, light per light group); free relays are switches, or lights by kind.

Templates index the JSON with brackets: Jinja looks an attribute up before an item, so
``value_json.values`` is the dict's ``values`` method and renders as an empty string.

Particle units keep the micro sign of drivers/quantities.py (U+00B5): it is the spelling of HA
releases before 2025.9, and later ones translate it to the Greek mu (core pull request 144853).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Optional

from agent.config.schema import Config
from agent.control.room import PUBLISHED
from agent.mqtt.contract import Topics, dumps
from agent.mqtt.ha_components import RELAY_TEMPLATE, command_topic, on_off, value_template
from drivers import DRIVERS
from drivers.quantities import QUANTITIES, label_of

DEFAULT_PREFIX = "homeassistant"
ORIGIN = "roomagent"
QOS = 1
AVAILABLE_TEMPLATE = "{{ 'online' if value_json['available'] else 'offline' }}"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def status_topic(prefix: str = DEFAULT_PREFIX) -> str:
    """Home Assistant's birth and last-will topic: re-send discovery when it says online."""
    return f"{prefix}/status"


def ha_status_is_online(payload: bytes) -> bool:
    """True for Home Assistant's (default) birth message on ``<prefix>/status``."""
    return payload.strip() == b"online"


def discovery_payload(
    config: Config,
    agent_version: str,
    prefix: str = DEFAULT_PREFIX,
    support_url: Optional[str] = None,
    ble_quantities: Optional[Mapping[str, Mapping[str, str]]] = None,
) -> tuple[str, bytes]:
    """The discovery topic and its payload for this node; publish it retained, QoS 1.
    ble_quantities: what each BLE device has sent so far (agent.central.ha_discovery_ble).

    Raises ValueError for a prefix that is not a plain topic, or if two entities would get one
    id (names that differ only in characters outside ``[A-Za-z0-9_-]``)."""
    if (
        not prefix
        or prefix.startswith("/")
        or prefix.endswith("/")
        or any(c in prefix for c in "+#\0")
    ):
        raise ValueError(f"prefix: must be a topic without wildcards, got {prefix!r}")
    node, control = config.node, config.control
    topics = Topics(node.base_topic)
    uid = f"roomagent_{node.id}"
    cmps: dict[str, dict[str, Any]] = {}

    def add(key: str, component: dict[str, Any]) -> None:
        slug = _ID_UNSAFE.sub("_", key)
        if slug in cmps:
            raise ValueError(
                f"two Home Assistant entities would both be {slug!r}: "
                f"rename one (ids keep only letters, digits, '-' and '_')"
            )
        cmps[slug] = {**component, "uniq_id": f"{uid}_{key}", "qos": QOS}

    for device in config.devices:
        state = topics.state(device.name)
        # The node's status and the device's own: a live agent with a dead sensor is unavailable.
        availability = [{"t": topics.status}, {"t": state, "val_tpl": AVAILABLE_TEMPLATE}]
        for quantity in DRIVERS[device.driver].measured(device.options):
            q = QUANTITIES[quantity]
            sensor: dict[str, Any] = {
                "p": "sensor",
                "name": f"{device.name} {label_of(quantity)}",
                "stat_t": state,
                "val_tpl": value_template("values", quantity),
                "stat_cla": q.ha.state_class,
                "sug_dsp_prc": q.decimals,
                "avty": availability,
                "avty_mode": "all",
            }
            if q.ha.device_class is not None:
                sensor["dev_cla"] = q.ha.device_class
            if q.unit.value:
                sensor["unit_of_meas"] = q.unit.value
            add(f"{device.name}_{quantity}", sensor)

    if config.ble.active:
        from agent.central.ha_discovery_ble import components as ble_components

        for key, component in ble_components(config.ble, topics, ble_quantities or {}):
            add(key, component)

    # The command path refuses a relay that a zone, light group or ventilation runs
    # ("controlled"): HA gets that relay's state only, and the owner's control instead.
    owned = set(control.relay_owners())
    for relay in control.relays:
        if relay.name in owned:
            add(f"relay_{relay.name}_state", {
                "p": "binary_sensor",
                "name": relay.name,
                "stat_t": topics.relay(relay.name),
                "val_tpl": RELAY_TEMPLATE,
                "dev_cla": "running",
            })  # fmt: skip
            continue
        add(f"relay_{relay.name}", on_off(
            "light" if relay.kind == "light" else "switch", relay.name,
            topics.relay(relay.name), command_topic(node.base_topic, "relay", relay.name),
        ))  # fmt: skip
    # Each input and control as it declares itself (agent.control.room.PUBLISHED).
    for published in PUBLISHED:
        for item in getattr(control, published.section):
            for key, component in published.entities(item, topics).items():
                add(key, component)
    for scene in control.scenes:
        # Home Assistant's MQTT scene: activate only, it has no state (nor do ours).
        add(f"scene_{scene.name}", {
            "p": "scene",
            "name": scene.name,
            "cmd_t": command_topic(node.base_topic, "scene", scene.name),
            "pl_on": "ON",
        })  # fmt: skip

    # A relay without a rated power would report 0 kWh for ever.
    metered = [r for r in control.relays if r.rated_power_w > 0]
    for relay in metered:
        add(f"relay_{relay.name}_energy", _energy(
            f"{relay.name} energy", topics, value_template("relays_kwh", relay.name)
        ))  # fmt: skip
    if metered:
        add("energy_total", _energy("energy total", topics, "{{ value_json['total_kwh'] }}"))
    from agent.room.service import discovery_components  # [room]: comfort and occupancy

    for key, component in discovery_components(config, topics.base).items():
        add(key, component)
    from agent.analytics.service import discovery_components as fault_components

    for key, component in fault_components(config, topics.base).items():
        add(key, component)

    origin: dict[str, Any] = {"name": ORIGIN, "sw": agent_version}
    if support_url is not None:
        origin["url"] = support_url
    payload = {
        "dev": {
            "ids": [uid],
            "name": node.name,
            "mf": ORIGIN,
            "mdl": "room node (simulated)" if node.simulate else "room node",
            "sw": agent_version,
        },
        "o": origin,
        "avty": [{"t": topics.status}],
        "qos": QOS,
        "cmps": cmps,
    }
    return f"{prefix}/device/{node.id}/config", _dumps(payload)


def removal_payload(previous: bytes, current: bytes) -> Optional[bytes]:
    """The update that removes what ``previous`` had and ``current`` has not, or None.

    HA keeps a component that is simply left out, so each one gone is sent once as only its
    platform, with everything current; ``current`` itself follows. ``previous`` is the payload
    last published (the state store, or the retained message read back); an empty or unreadable
    one removes nothing."""
    try:
        old = json.loads(previous)
        new = json.loads(current)
        old_cmps = old.get("cmps", old.get("components", {}))
        gone = {k: {"p": c.get("p", c.get("platform"))} for k, c in old_cmps.items()
                if k not in new["cmps"]}  # fmt: skip
    except (ValueError, AttributeError, KeyError, TypeError):
        return None
    if not gone:
        return None
    return _dumps({**new, "cmps": {**new["cmps"], **gone}})


def _energy(name: str, topics: Topics, template: str) -> dict[str, Any]:
    return {
        "p": "sensor",
        "name": name,
        "stat_t": topics.energy_state,
        "val_tpl": template,
        "dev_cla": "energy",
        "stat_cla": "total_increasing",
        "unit_of_meas": "kWh",
        "sug_dsp_prc": 2,
    }


def _dumps(obj: Any) -> bytes:
    return dumps(obj)
