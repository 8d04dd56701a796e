"""Every value name the BLE decoders can return, with its unit.

The quantities of drivers/quantities.py (temperature, humidity, co2, pm*, voc_index,
nox_index, ...) take their unit from there, the one quantity table; only the names no I2C
driver reports are listed here. A BTHome name repeated in one advertisement gets a suffix
(temperature_2): `unit_of` strips it.
"""

from __future__ import annotations

import re
from typing import Optional

from drivers.quantities import QUANTITIES

# name -> unit ("" for counts, states, identifiers and text), for names not in QUANTITIES.
_BLE_ONLY: dict[str, str] = {
    # measurements
    "battery": "%",
    "dew_point": "°C",
    "moisture": "%",
    "tvoc": "µg/m³",
    "mass": "kg",
    "energy": "kWh",
    "gas": "m³",
    "water": "L",
    "volume": "L",
    "volume_storage": "L",
    "volume_flow_rate": "m³/h",
    "distance": "m",
    "duration": "s",
    "speed": "m/s",
    "acceleration": "m/s²",
    "acceleration_x": "m/s²",
    "acceleration_y": "m/s²",
    "acceleration_z": "m/s²",
    "gyroscope": "°/s",
    "rotation": "°",
    "direction": "°",
    "precipitation": "mm",
    "rotational_speed": "rpm",
    "conductivity": "µS/cm",
    "uv_index": "",
    "tx_power": "dBm",
    "uptime": "s",
    "timestamp": "s",  # since 1970-01-01 UTC
    # counts, enumerations, identifiers
    "count": "",
    "movement_counter": "",
    "adv_count": "",
    "channel": "",
    "light_level": "",  # 0 dark, 1 twilight, 2 bright
    "settings_revision": "",
    "device_type_id": "",
    "firmware_version": "",
    "text": "",
    "raw": "",
    "uuid": "",
    "major": "",
    "minor": "",
    "namespace": "",
    "instance": "",
    "url": "",
    # states (bool)
    "generic_boolean": "",
    "power_on": "",
    "opening": "",
    "battery_low": "",
    "battery_charging": "",
    "carbon_monoxide": "",
    "cold": "",
    "connectivity": "",
    "door": "",
    "garage_door": "",
    "gas_detected": "",
    "heat": "",
    "light": "",
    "unlocked": "",
    "wet": "",
    "motion": "",
    "moving": "",
    "occupancy": "",
    "plug": "",
    "presence": "",
    "problem": "",
    "running": "",
    "safety": "",
    "smoke": "",
    "sound": "",
    "tamper": "",
    "vibration": "",
    "window": "",
    "reed_switch": "",
    "trigger_output": "",
    "calibrating": "",  # Ruuvi Air: sensors still calibrating, values not fully accurate
    # events (str), and a dimmer's steps (int)
    "button": "",
    "dimmer": "",
    "dimmer_steps": "",
    "command": "",
    "command_steps": "",
}
UNITS: dict[str, str] = {**_BLE_ONLY, **{q.name: q.unit.value for q in QUANTITIES.values()}}

_SUFFIX = re.compile(r"^(?P<base>[a-z0-9_]+?)_(?P<n>[2-9]|[1-9][0-9]+)(?P<steps>_steps)?$")


def base_name(name: str) -> str:
    """The name without its repeat number: temperature_2 -> temperature, dimmer_2_steps ->
    dimmer_steps."""
    if name in UNITS:
        return name
    match = _SUFFIX.match(name)
    if match is None:
        return name
    return match["base"] + (match["steps"] or "")


def unit_of(name: str) -> Optional[str]:
    """The unit of a decoded value's name, or None for a name no decoder returns."""
    return UNITS.get(base_name(name))
