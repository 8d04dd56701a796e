"""Home Assistant entities for BLE sensors and presence groups, for agent/discovery.py.

A BLE device's quantities are not known from its config the way an I2C driver's are (a BTHome
sensor sends what its firmware chooses), so they come from the config's `quantities` when
given, else from what the device has sent so far (kept across restarts by the BLE service).
Numbers become sensors, binary states binary sensors; identifiers, text, events and the
beacon's calibration (tx_power) are left out. Device classes and their units are HA's
(homeassistant/components/sensor/const.py DEVICE_CLASS_UNITS, binary_sensor/__init__.py
BinarySensorDeviceClass); units are drivers/ble/units.py's.

Every entity reads the device's retained state, ``<base>/state/<name>``, and is available
while the node and the device are, like an I2C device's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Optional

from agent.contract import Topics

# BLE-only numbers: quantity -> (sensor device class or None, label, state class)
SENSOR_CLASSES: dict[str, tuple[Optional[str], str, str]] = {
    "battery": ("battery", "battery", "measurement"),
    "dew_point": ("temperature", "dew point", "measurement"),
    "moisture": ("moisture", "moisture", "measurement"),
    "tvoc": ("volatile_organic_compounds", "TVOC", "measurement"),
    "mass": ("weight", "mass", "measurement"),
    "distance": ("distance", "distance", "measurement"),
    "duration": ("duration", "duration", "measurement"),
    "speed": ("speed", "speed", "measurement"),
    "precipitation": ("precipitation", "precipitation", "measurement"),
    "conductivity": ("conductivity", "conductivity", "measurement"),
    "volume_flow_rate": ("volume_flow_rate", "flow", "measurement"),
    # meter readings only ever grow
    "energy": ("energy", "energy", "total_increasing"),
    "gas": ("gas", "gas", "total_increasing"),
    "water": ("water", "water", "total_increasing"),
    "volume": ("volume", "volume", "total_increasing"),
    "volume_storage": ("volume_storage", "stored volume", "measurement"),
}
# Not worth an entity: identities, calibration, counters of the radio itself.
NOT_ENTITIES = frozenset({
    "tx_power", "movement_counter", "adv_count", "device_type_id", "firmware_version",
    "timestamp", "uptime", "channel", "count", "uuid", "major", "minor", "namespace",
    "instance", "url", "text", "raw", "settings_revision", "command_steps",
})  # fmt: skip
# BTHome binary names -> HA binary sensor device class (their meaning of "on" agrees).
BINARY_CLASSES: dict[str, Optional[str]] = {
    "battery_low": "battery", "battery_charging": "battery_charging",
    "carbon_monoxide": "carbon_monoxide", "cold": "cold", "connectivity": "connectivity",
    "door": "door", "garage_door": "garage_door", "gas_detected": "gas", "heat": "heat",
    "light": "light", "unlocked": "lock", "wet": "moisture", "motion": "motion",
    "moving": "moving", "occupancy": "occupancy", "opening": "opening", "plug": "plug",
    "power_on": "power", "presence": "presence", "problem": "problem", "running": "running",
    "safety": "safety", "smoke": "smoke", "sound": "sound", "tamper": "tamper",
    "vibration": "vibration", "window": "window", "generic_boolean": None,
    "reed_switch": "opening", "trigger_output": None, "calibrating": None,
}  # fmt: skip
AVAILABLE_TEMPLATE = "{{ 'online' if value_json['available'] else 'offline' }}"


def components(
    ble: Any, topics: Topics, learned: Mapping[str, Mapping[str, str]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(component key, component) for every BLE entity; `ble` is the config's BleConfig,
    `learned` device -> quantity -> "number" or "binary" (BleService.quantities)."""
    from agent.discovery import SENSOR_CLASSES as I2C_CLASSES
    from drivers.ble.units import base_name, unit_of
    from drivers.quantities import QUANTITIES

    for device in ble.devices:
        state = topics.state(device.name)
        availability = [{"t": topics.status}, {"t": state, "val_tpl": AVAILABLE_TEMPLATE}]
        kinds = dict(learned.get(device.name, {}))
        if device.quantities:
            kinds = {q: kinds.get(q, "binary" if base_name(q) in BINARY_CLASSES else "number")
                     for q in device.quantities}  # fmt: skip
        for quantity in sorted(kinds):
            base = base_name(quantity)
            label = quantity.replace("_", " ")
            common = {"stat_t": state, "avty": availability, "avty_mode": "all"}
            if kinds[quantity] == "binary":
                binary: dict[str, Any] = {
                    "p": "binary_sensor",
                    "name": f"{device.name} {label}",
                    **common,
                    "val_tpl": _template(quantity),
                    "pl_on": "True",  # how Jinja renders the JSON true it reads
                    "pl_off": "False",
                }
                if BINARY_CLASSES.get(base):
                    binary["dev_cla"] = BINARY_CLASSES[base]
                yield f"{device.name}_{quantity}", binary
                continue
            if base in NOT_ENTITIES:
                continue
            device_class: Optional[str]
            state_class = "measurement"
            if base in I2C_CLASSES:
                device_class, label = I2C_CLASSES[base]
            elif base in SENSOR_CLASSES:
                device_class, label, state_class = SENSOR_CLASSES[base]
            else:
                device_class = None
            if base != quantity:
                label += quantity[len(base) :].replace("_", " ")  # temperature_2 -> "... 2"
            sensor: dict[str, Any] = {
                "p": "sensor",
                "name": f"{device.name} {label}",
                **common,
                "val_tpl": _template(quantity),
                "stat_cla": state_class,
            }
            if base in QUANTITIES:
                sensor["sug_dsp_prc"] = QUANTITIES[base].decimals
            if device_class is not None:
                sensor["dev_cla"] = device_class
            if unit_of(quantity):
                sensor["unit_of_meas"] = unit_of(quantity)
            yield f"{device.name}_{quantity}", sensor

    for group in ble.presence:
        state = topics.state(group.name)
        availability = [{"t": topics.status}, {"t": state, "val_tpl": AVAILABLE_TEMPLATE}]
        common = {"stat_t": state, "avty": availability, "avty_mode": "all"}
        yield (
            f"{group.name}_occupancy",
            {
                "p": "sensor",
                "name": f"{group.name} people",
                **common,
                "val_tpl": _template("occupancy"),
                "stat_cla": "measurement",
                "sug_dsp_prc": 0,
            },
        )
        yield (
            f"{group.name}_occupied",
            {
                "p": "binary_sensor",
                "name": f"{group.name} occupied",
                **common,
                "val_tpl": "{{ 'ON' if value_json['values'].get('occupancy', 0) > 0 else 'OFF' }}",
                "dev_cla": "occupancy",
                "pl_on": "ON",
                "pl_off": "OFF",
            },
        )


def _template(key: str) -> str:
    # "" while the key is missing: HA ignores an empty state (as agent/discovery.py does).
    return f"{{{{ value_json['values'].get({json.dumps(key)}, '') }}}}"
