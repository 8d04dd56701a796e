"""Home Assistant discovery for a node with every kind of sensor entity, pinned byte for byte.

The pinned payload (tests/data/discovery_full_profile.json) was written by the code before the
quantity facts moved into one table (drivers/quantities.py), so a change of any entity's bytes
(key order included: HA keeps what it was sent) is caught. What each entity must say is checked
separately against Home Assistant's documentation: the device classes below are the documented
ones (developers.home-assistant.io, "Sensor entity" and "Binary sensor entity", Available device
classes), and each sensor's unit one its class accepts (sensor/const.py DEVICE_CLASS_UNITS).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agent.central.ha_discovery import discovery_payload
from agent.config import schema as config
from drivers.ble.units import UNITS

GOLDEN = Path(__file__).resolve().parent / "data" / "discovery_full_profile.json"

NODE = """
[node]
id = "full-1"
name = "Every sensor"
state_dir = "state"
[broker]
host = "localhost"

[[devices]]
name = "bme"
driver = "bme280"
interval = 5
[[devices]]
name = "bmp"
driver = "bmp280"
interval = 5
address = 0x77
[[devices]]
name = "sht3"
driver = "sht3x"
interval = 5
[[devices]]
name = "sht4"
driver = "sht4x"
interval = 5
bus = 3
[[devices]]
name = "co2"
driver = "scd4x"
interval = 5
[[devices]]
name = "voc"
driver = "sgp40"
interval = 1
[[devices]]
name = "pm"
driver = "pmsa003i"
interval = 5
[[devices]]
name = "lux"
driver = "bh1750"
interval = 5
[[devices]]
name = "daylight"
driver = "veml7700"
interval = 5
[[devices]]
name = "dc"
driver = "ina219"
interval = 5
[devices.options]
shunt_ohms = 0.1
max_current = 3.2
[[devices]]
name = "dc2"
driver = "ina226"
interval = 5
address = 0x41
[devices.options]
shunt_ohms = 0.01
max_current = 8.0

[[modbus]]
name = "rs485"
serial = "/dev/ttyUSB0"
baudrate = 9600
parity = "N"
stopbits = 1
[[devices]]
name = "m120"
driver = "sdm120"
interval = 5
bus = "rs485"
address = 1
[[devices]]
name = "m630"
driver = "sdm630"
interval = 5
bus = "rs485"
address = 2
[[devices]]
name = "m24"
driver = "em24"
interval = 5
bus = "rs485"
address = 3
[[devices]]
name = "generic"
driver = "modbus_generic"
interval = 5
bus = "rs485"
address = 4
[devices.options]
registers = [
  { quantity = "voltage", address = 0, type = "float32" },
  { quantity = "current", address = 2, type = "float32" },
  { quantity = "power", address = 4, type = "float32" },
  { quantity = "power_factor", address = 6, type = "float32" },
  { quantity = "frequency", address = 8, type = "float32" },
  { quantity = "energy_import", address = 10, type = "float32" },
  { quantity = "energy_export", address = 12, type = "float32" },
  { quantity = "voltage_l1", address = 14, type = "float32" },
  { quantity = "current_l2", address = 16, type = "float32" },
  { quantity = "power_l3", address = 18, type = "float32" },
  { quantity = "power_factor_l1", address = 20, type = "float32" },
]

[ble]
[[ble.devices]]
name = "tag"
address = "A4:C1:38:5E:12:01"
[[ble.devices]]
name = "door"
address = "A4:C1:38:5E:12:02"
quantities = ["opening", "battery", "temperature_2", "mystery", "wet", "co2"]
[[ble.presence]]
name = "badges"
beacons = ["C8:FD:19:00:00:01"]
"""

# Every name a BLE decoder returns, as the BLE service learns it (bool -> binary), plus repeats.
BINARY = {
    "generic_boolean", "power_on", "opening", "battery_low", "battery_charging",
    "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas_detected", "heat",
    "light", "unlocked", "wet", "motion", "moving", "occupancy", "plug", "presence", "problem",
    "running", "safety", "smoke", "sound", "tamper", "vibration", "window", "reed_switch",
    "trigger_output", "calibrating",
}  # fmt: skip
TEXT = {"button", "dimmer", "command", "text", "raw", "uuid", "url", "namespace", "instance"}
# A meter's counters come from Modbus only: no BLE decoder returns them.
METER_ONLY = {"energy_import", "energy_export", "co2e"}
LEARNED = {
    "tag": {
        **{n: "binary" if n in BINARY else "number" for n in set(UNITS) - TEXT - METER_ONLY},
        "temperature_2": "number", "humidity_3": "number", "motion_2": "binary",
        "dimmer_2_steps": "number",
    },
    "door": {"opening": "binary"},
}  # fmt: skip

# developers.home-assistant.io "Sensor entity", Available device classes: the ones used here,
# each with the units HA accepts for it (sensor/const.py DEVICE_CLASS_UNITS).
SENSOR_UNITS: dict[str, set[str]] = {
    "temperature": {"°C", "°F", "K"}, "humidity": {"%"},
    "atmospheric_pressure": {"hPa", "kPa", "Pa", "mbar", "bar", "cbar", "mmHg", "inHg", "psi"},
    "carbon_dioxide": {"ppm"}, "illuminance": {"lx"}, "pm1": {"µg/m³"}, "pm25": {"µg/m³"},
    "pm10": {"µg/m³"}, "voltage": {"V", "mV", "µV", "kV", "MV"}, "current": {"A", "mA"},
    "power": {"W", "kW", "mW", "MW", "GW", "TW"}, "power_factor": {"%", ""},
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "energy": {"Wh", "kWh", "MWh", "GWh", "TWh", "J", "kJ", "MJ", "GJ", "cal", "kcal"},
    "battery": {"%"}, "moisture": {"%"}, "volatile_organic_compounds": {"µg/m³", "mg/m³"},
    "weight": {"kg", "g", "mg", "µg", "oz", "lb", "st"},
    "distance": {"km", "m", "cm", "mm", "mi", "nmi", "yd", "in", "ft"},
    "duration": {"d", "h", "min", "s", "ms"}, "speed": {"m/s", "km/h", "mph", "ft/s", "kn"},
    "precipitation": {"cm", "in", "mm"}, "conductivity": {"S/cm", "mS/cm", "µS/cm"},
    "volume_flow_rate": {"m³/h", "ft³/min", "L/min", "gal/min", "mL/s"},
    "gas": {"m³", "ft³", "CCF", "L"}, "water": {"L", "gal", "m³", "ft³", "CCF"},
    "volume": {"L", "mL", "gal", "fl. oz.", "m³", "ft³", "CCF"},
    "volume_storage": {"L", "mL", "gal", "fl. oz.", "m³", "ft³", "CCF"},
}  # fmt: skip
# developers.home-assistant.io "Binary sensor entity", Available device classes.
BINARY_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
}  # fmt: skip


@pytest.fixture
def body(tmp_path: Path) -> bytes:
    path = tmp_path / "node.toml"
    path.write_text(textwrap.dedent(NODE))
    return discovery_payload(config.load(path), "9.9.9", ble_quantities=LEARNED)[1]


def test_every_entity_is_what_it_was_byte_for_byte(body: bytes) -> None:
    pinned = GOLDEN.read_bytes().rstrip(b"\n")
    if body != pinned:  # name the entities that differ, not a 20 kB diff
        new, old = json.loads(body)["cmps"], json.loads(pinned)["cmps"]
        changed = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
        reordered = sorted(k for k in new if k in old and list(new[k]) != list(old[k]))
        pytest.fail(f"changed: {changed}; keys reordered: {reordered}")


def test_device_classes_and_units_are_home_assistants(body: bytes) -> None:
    cmps: dict[str, dict[str, Any]] = json.loads(body)["cmps"]
    sensors = {k: c for k, c in cmps.items() if c["p"] == "sensor" and "dev_cla" in c}
    binaries = {k: c for k, c in cmps.items() if c["p"] == "binary_sensor" and "dev_cla" in c}
    assert len(sensors) > 60 and len(binaries) > 25
    for key, comp in sensors.items():
        assert comp.get("unit_of_meas", "") in SENSOR_UNITS[comp["dev_cla"]], key
        assert comp["stat_cla"] in ("measurement", "total_increasing"), key
    for key, comp in binaries.items():
        assert comp["dev_cla"] in BINARY_CLASSES, key
    # Meter readings only ever grow (HA's Energy dashboard takes only these).
    for key in ("m630_energy_import", "m24_energy_export", "generic_energy_import", "tag_energy",
                "tag_gas", "tag_water", "m120_co2e"):  # fmt: skip
        assert cmps[key]["stat_cla"] == "total_increasing", key
    # A repeated name is labelled with its number, once (it was "tag dimmer 2 stepsps").
    assert cmps["tag_dimmer_2_steps"]["name"] == "tag dimmer steps 2"
    assert cmps["tag_temperature_2"]["name"] == "tag temperature 2"
    assert cmps["tag_humidity_3"]["name"] == "tag humidity 3"
    # Identities and the radio's own counters are not entities.
    for name in ("tx_power", "adv_count", "uuid", "firmware_version", "movement_counter"):
        assert f"tag_{name}" not in cmps
