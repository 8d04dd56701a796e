"""Home Assistant entities for BLE sensors and presence groups, for agent/central/ha_discovery.py.

A BLE device's quantities are not known from its config the way an I2C driver's are (a BTHome
sensor sends what its firmware chooses), so they come from the config's `quantities` when
given, else from what the device has sent so far (kept across restarts by the BLE service).
Numbers become sensors, binary states binary sensors; identifiers, text, events and the
beacon's calibration (tx_power) are left out. Device classes, labels and units are the one
quantity table's (drivers/quantities.py).

Every entity reads the device's retained state, ``<base>/state/<name>``, and is available
while the node and the device are, like an I2C device's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from agent.mqtt.contract import Topics
from drivers.ble.units import base_name, repeat_of, unit_of
from drivers.quantities import QUANTITIES, TABLE, label_of

AVAILABLE_TEMPLATE = "{{ 'online' if value_json['available'] else 'offline' }}"


def components(
    ble: Any, topics: Topics, learned: Mapping[str, Mapping[str, str]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(component key, component) for every BLE entity; `ble` is the config's BleConfig,
    `learned` device -> quantity -> "number" or "binary" (BleService.quantities)."""
    for device in ble.devices:
        state = topics.state(device.name)
        availability = [{"t": topics.status}, {"t": state, "val_tpl": AVAILABLE_TEMPLATE}]
        kinds = dict(learned.get(device.name, {}))
        if device.quantities:
            kinds = {q: kinds.get(q, "binary" if _is_binary(base_name(q)) else "number")
                     for q in device.quantities}  # fmt: skip
        for quantity in sorted(kinds):
            base = base_name(quantity)
            row = TABLE.get(base)
            common = {"stat_t": state, "avty": availability, "avty_mode": "all"}
            if kinds[quantity] == "binary":
                binary: dict[str, Any] = {
                    "p": "binary_sensor",
                    "name": f"{device.name} {quantity.replace('_', ' ')}",
                    **common,
                    "val_tpl": _template(quantity),
                    "pl_on": "True",  # how Jinja renders the JSON true it reads
                    "pl_off": "False",
                }
                if row is not None and row.ha.binary and row.ha.device_class:
                    binary["dev_cla"] = row.ha.device_class
                yield f"{device.name}_{quantity}", binary
                continue
            if row is not None and not row.ha.shown:
                continue
            label = label_of(base)
            # A binary name heard as a number keeps no binary class.
            device_class = row.ha.device_class if row is not None and not row.ha.binary else None
            state_class = row.ha.state_class if row is not None else "measurement"
            if repeat_of(quantity):  # temperature_2 -> "... 2", dimmer_2_steps -> "dimmer steps 2"
                label += f" {repeat_of(quantity)}"
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


def _is_binary(name: str) -> bool:
    row = TABLE.get(name)
    return row is not None and row.ha.binary


def _template(key: str) -> str:
    # "" while the key is missing: HA ignores an empty state (as agent/central/ha_discovery.py
    # does).
    return f"{{{{ value_json['values'].get({json.dumps(key)}, '') }}}}"
