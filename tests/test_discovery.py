"""Home Assistant device discovery, checked field by field against HA's documented schema.

Sources of the expectations below (as read for agent/central/ha_discovery.py):
- home-assistant.io source/_integrations/mqtt.markdown, "Device discovery payload".
- home-assistant/core homeassistant/components/mqtt/: schemas.py (DEVICE_DISCOVERY_SCHEMA,
  SHARED_OPTIONS, check_unique_id), discovery.py (TOPIC_MATCHER, _merge_common_device_options),
  abbreviations.py (the subset copied into ABBREVIATIONS here), climate.py (presets, precision).
- HA sensor device classes and the units each accepts (sensor/const.py DEVICE_CLASS_UNITS).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agent.central.ha_discovery import (
    discovery_payload,
    ha_status_is_online,
    removal_payload,
    status_topic,
)
from agent.config import schema as config
from agent.config.schema import Config
from agent.config.ventilation import VentilationConfig
from agent.control import ventilation
from agent.mqtt.contract import Topics
from tests.ha_abbreviations import (
    ABBREVIATIONS,
    DEVICE_ABBREVIATIONS,
    ORIGIN_ABBREVIATIONS,
    UNABBREVIATED,
)

REPO = Path(__file__).resolve().parent.parent
BASE = "roomagent/chamber-1"
UID = "roomagent_chamber-1"

NODE = """
[node]
id = "chamber-1"
name = "Council chamber"
state_dir = "state"
[broker]
host = "localhost"

[[devices]]
name = "climate"
driver = "bme280"
interval = 2
[[devices]]
name = "co2"
driver = "scd4x"
interval = 5
compensate_from = "climate"
[[devices]]
name = "voc"
driver = "sgp40"
interval = 1
compensate_from = "climate"
[[devices]]
name = "particles"
driver = "pmsa003i"
interval = 10
[[devices]]
name = "mains"
driver = "ina219"
interval = 5
[devices.options]
shunt_ohms = 0.1
max_current = 3.2
[[devices]]
name = "daylight"
driver = "veml7700"
interval = 5

[[relays]]
name = "heater"
pin = 17
kind = "heat"
rated_power_w = 2000
[[relays]]
name = "cooler"
pin = 27
kind = "cool"
rated_power_w = 2500
[[relays]]
name = "radiator"
pin = 22
kind = "heat"
rated_power_w = 1000
[[relays]]
name = "aircon"
pin = 25
kind = "cool"
[[relays]]
name = "lights"
pin = 23
kind = "light"
rated_power_w = 400
[[relays]]
name = "lamp"
pin = 16
kind = "light"
[[relays]]
name = "fan"
pin = 26
kind = "ventilation"
rated_power_w = 60
[[relays]]
name = "spare"
pin = 24
{extra_relay}

[[inputs]]
name = "pir"
pin = 4
kind = "motion"
[[inputs]]
name = "door"
pin = 5
kind = "contact"
[[inputs]]
name = "wall"
pin = 6
kind = "button"
[[inputs]]
name = "master"
pin = 12
kind = "switch"

[[zones]]
name = "chamber"
sensor = "climate"
heat = ["heater"]
cool = ["cooler"]
comfort = 21.0
eco = 17.0
boost = 23.0
[[zones]]
name = "annex"
sensor = "co2"
heat = ["radiator"]
comfort = 20.0
eco = 16.0
boost = 22.0
frost = 5.0
[[zones]]
name = "server"
sensor = "climate"
cool = ["aircon"]
comfort = 21.0
eco = 17.0
boost = 23.0

[[lights]]
name = "hall"
relays = ["lights"]
occupancy = ["pir"]

[[ventilation]]
name = "air"
relays = "fan"
co2_sensor = "co2"

[[scenes]]
name = "council-session"
[scenes.targets]
"lights:hall" = "on"
"""
EXTRA = '[[relays]]\nname = "extra"\npin = 20\nrated_power_w = 100\n'
# Every kind of control once more, with a two-stage fan (speeds): the discovery payload pinned
# byte for byte (tests/data/discovery_controls.json) as the code wrote it before each control
# declared its own entities (agent.control.types.Published; main at e6f4ca0, before branch lay16):
# HA keeps a component's keys in the order it was sent.
CONTROLS_GOLDEN = Path(__file__).resolve().parent / "data" / "discovery_controls.json"
TWO_STAGES = """
[[relays]]
name = "fan-low"
pin = 20
kind = "ventilation"
[[relays]]
name = "fan-high"
pin = 21
kind = "ventilation"
[[ventilation]]
name = "hall-air"
relays = ["fan-low", "fan-high"]
co2_sensor = "co2"
co2_high = 1400
"""

# DEVICE_DISCOVERY_SCHEMA's keys: anything else at the root invalidates the whole message.
ROOT_KEYS = {"device", "components", "origin", "state_topic", "command_topic", "qos",
             "encoding", "message_expiry_interval", "availability", "availability_topic",
             "availability_template", "availability_mode", "payload_available",
             "payload_not_available"}  # fmt: skip
# schemas.py SHARED_OPTIONS: copied from the root into a component that does not set them.
SHARED = ("avty", "avty_mode", "avty_tpl", "avty_t", "cmd_t", "e", "pl_avail", "pl_not_avail",
          "stat_t", "qos")  # fmt: skip
# The units HA accepts for each sensor device class used here (µ: see the module docstring).
HA_UNITS = {
    "temperature": {"°C", "°F", "K"}, "humidity": {"%"},
    "atmospheric_pressure": {"hPa", "kPa", "Pa", "mbar", "bar", "cbar", "mmHg", "inHg", "psi"},
    "carbon_dioxide": {"ppm"}, "illuminance": {"lx"}, "pm1": {"\u00b5g/m³"},
    "pm25": {"\u00b5g/m³"}, "pm10": {"\u00b5g/m³"}, "voltage": {"V", "mV", "µV", "kV", "MV"},
    "current": {"A", "mA"}, "power": {"W", "kW", "mW", "MW", "GW", "TW"},
    "energy": {"Wh", "kWh", "MWh", "GWh", "TWh", "J", "kJ", "MJ", "GJ", "cal", "kcal"},
}  # fmt: skip
STATE_KEYS = {"stat_t", "curr_temp_t", "temp_stat_t", "mode_stat_t", "pr_mode_stat_t", "act_t",
              "fx_stat_t", "pct_stat_t", "json_attr_t"}  # fmt: skip
COMMAND_KEYS = {"cmd_t", "temp_cmd_t", "mode_cmd_t", "pr_mode_cmd_t", "fx_cmd_t", "pct_cmd_t"}


def load(tmp_path: Path, extra_relay: str = "", name: str = "node.toml") -> Config:
    path = tmp_path / name
    path.write_text(textwrap.dedent(NODE).replace("{extra_relay}", extra_relay))
    return config.load(path)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load(tmp_path)


@pytest.fixture
def payload(cfg: Config) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(discovery_payload(cfg, "9.9.9")[1])
    return body


def test_topic_device_and_origin(cfg: Config, payload: dict[str, Any]) -> None:
    topic = discovery_payload(cfg, "9.9.9")[0]
    assert topic == "homeassistant/device/chamber-1/config"
    # TOPIC_MATCHER: the object id must be [a-zA-Z0-9_-]+.
    assert re.fullmatch(r"homeassistant/device/[a-zA-Z0-9_-]+/config", topic)
    assert discovery_payload(cfg, "9.9.9", prefix="ha")[0] == "ha/device/chamber-1/config"
    assert payload["dev"] == {"ids": [UID], "name": "Council chamber", "mf": "roomagent",
                              "mdl": "room node", "sw": "9.9.9"}  # fmt: skip
    assert payload["o"] == {"name": "roomagent", "sw": "9.9.9"}
    with_url = json.loads(discovery_payload(cfg, "9.9.9", support_url="https://example.org")[1])
    assert with_url["o"]["url"] == "https://example.org"
    assert payload["qos"] == 1
    assert payload["avty"] == [{"t": f"{BASE}/status"}]


@pytest.mark.parametrize("prefix", ["", "/ha", "ha/", "ha/#", "h+a"])
def test_a_prefix_with_wildcards_or_stray_slashes_is_refused(cfg: Config, prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        discovery_payload(cfg, "1", prefix=prefix)


def test_every_key_is_a_documented_abbreviation(payload: dict[str, Any]) -> None:
    full_root = {ABBREVIATIONS.get(k, k) for k in payload}
    assert full_root <= ROOT_KEYS
    assert {"device", "origin", "components"} <= full_root  # required by the schema
    assert set(payload["dev"]) <= set(DEVICE_ABBREVIATIONS)
    assert set(payload["o"]) <= set(ORIGIN_ABBREVIATIONS)
    for key, comp in payload["cmps"].items():
        for k in comp:
            assert k in ABBREVIATIONS or k in UNABBREVIATED, (key, k)
        for entry in comp.get("avty", []):
            assert set(entry) <= {"t", "val_tpl"}
    # Consistency: no key is spelt out where an abbreviation exists.
    spelled_out = set(ABBREVIATIONS.values()) - set(ABBREVIATIONS)
    everywhere = set(payload) | {k for c in payload["cmps"].values() for k in c}
    assert not everywhere & spelled_out


def test_a_component_id_and_unique_id_per_entity(payload: dict[str, Any]) -> None:
    cmps = payload["cmps"]
    # 14 quantities, 8 relays, a light group, 4 inputs, 3 zones, 5 metered relays, a total,
    # a scene, a ventilation fan and the faults' problem sensor.
    assert len(cmps) == 14 + 8 + 1 + 4 + 3 + 5 + 1 + 1 + 1 + 1
    unique_ids = [c["uniq_id"] for c in cmps.values()]
    assert len(set(unique_ids)) == len(unique_ids)  # check_unique_id needs one per entity
    for key, comp in cmps.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]+", key)  # HA splits discovery ids on spaces
        assert comp["uniq_id"] == f"{UID}_{key}"
        assert len(comp) > 1  # a component with only "p" would remove the entity
        assert comp["qos"] == 1


def test_a_sensor_per_quantity_with_ha_class_and_unit(payload: dict[str, Any]) -> None:
    expected = {  # (device, quantity): (device class, unit, display precision)
        ("climate", "temperature"): ("temperature", "°C", 2),
        ("climate", "humidity"): ("humidity", "%", 2),
        ("climate", "pressure"): ("atmospheric_pressure", "hPa", 2),
        ("co2", "co2"): ("carbon_dioxide", "ppm", 0),
        ("co2", "temperature"): ("temperature", "°C", 2),
        ("co2", "humidity"): ("humidity", "%", 2),
        ("voc", "voc_index"): (None, None, 0),
        ("particles", "pm1_0"): ("pm1", "\u00b5g/m³", 0),
        ("particles", "pm2_5"): ("pm25", "\u00b5g/m³", 0),
        ("particles", "pm10"): ("pm10", "\u00b5g/m³", 0),
        ("mains", "voltage"): ("voltage", "V", 3),
        ("mains", "current"): ("current", "A", 4),
        ("mains", "power"): ("power", "W", 3),
        ("daylight", "illuminance"): ("illuminance", "lx", 1),
    }
    for (device, quantity), (device_class, unit, decimals) in expected.items():
        comp = payload["cmps"][f"{device}_{quantity}"]
        state = f"{BASE}/state/{device}"
        assert comp["p"] == "sensor"
        assert comp["uniq_id"] == f"{UID}_{device}_{quantity}"
        assert comp["stat_t"] == state
        assert comp["val_tpl"] == f"{{{{ value_json['values'].get(\"{quantity}\", '') }}}}"
        assert comp["stat_cla"] == "measurement"
        assert comp["sug_dsp_prc"] == decimals
        assert comp.get("dev_cla") == device_class
        assert comp.get("unit_of_meas") == unit
        if device_class is not None:
            assert unit in HA_UNITS[device_class]
        assert comp["avty_mode"] == "all"
        assert comp["avty"] == [
            {"t": f"{BASE}/status"},
            {"t": state, "val_tpl": "{{ 'online' if value_json['available'] else 'offline' }}"},
        ]


def test_templates_index_the_json_with_brackets(payload: dict[str, Any]) -> None:
    # Jinja resolves value_json.values to dict.values (the method), which renders as "".
    templates = [v for c in payload["cmps"].values() for k, v in c.items() if "tpl" in k]
    templates += [e["val_tpl"] for c in payload["cmps"].values() for e in c.get("avty", [])
                  if "val_tpl" in e]  # fmt: skip
    assert len(templates) > 40
    for template in templates:
        assert "value_json." not in template, template


def test_availability_after_ha_merges_the_shared_options(payload: dict[str, Any]) -> None:
    for key, comp in payload["cmps"].items():
        merged = {**{k: payload[k] for k in SHARED if k in payload and k not in comp}, **comp}
        # availability_topic and availability are exclusive in every component schema.
        assert not ("avty" in merged and "avty_t" in merged), key
        if comp["p"] == "sensor" and not key.startswith(("relay_", "energy_")):
            assert len(merged["avty"]) == 2
        else:
            assert merged["avty"] == [{"t": f"{BASE}/status"}]


def test_free_relays_are_switches_or_lights_owned_ones_only_report(
    payload: dict[str, Any],
) -> None:
    cmps = payload["cmps"]
    for name, platform in [("spare", "switch"), ("lamp", "light")]:
        comp = cmps[f"relay_{name}"]
        assert comp["p"] == platform
        assert comp["name"] == name
        assert comp["stat_t"] == f"{BASE}/relay/{name}"
        assert comp["cmd_t"] == f"{BASE}/cmd/relay/{name}"
        assert (comp["pl_on"], comp["pl_off"]) == ("ON", "OFF")
        # The light platform reads its state through state_value_template, not value_template.
        template = comp["stat_val_tpl" if platform == "light" else "val_tpl"]
        assert template == "{{ 'ON' if value_json['on'] else 'OFF' }}"
        assert ("val_tpl" in comp) == (platform == "switch")
    # Run by a zone, the light group or the ventilation: the command path refuses them.
    for name in ("heater", "cooler", "radiator", "aircon", "lights", "fan"):
        assert f"relay_{name}" not in cmps
        comp = cmps[f"relay_{name}_state"]
        assert (comp["p"], comp["dev_cla"]) == ("binary_sensor", "running")
        assert comp["stat_t"] == f"{BASE}/relay/{name}"
        assert comp["val_tpl"] == "{{ 'ON' if value_json['on'] else 'OFF' }}"
        assert "cmd_t" not in comp and "pl_on" not in comp  # HA's defaults: ON and OFF
    group = cmps["lights_hall"]
    assert (group["p"], group["name"]) == ("light", "hall")
    assert group["stat_t"] == f"{BASE}/lights/hall"
    # Back to automatic from HA: the effect "auto", sent after ON.
    assert group["fx_cmd_t"] == f"{BASE}/cmd/lights/hall/effect" and group["fx_list"][0] == "auto"
    assert group["on_cmd_type"] == "first"
    fan = cmps["ventilation_air"]
    assert (fan["p"], fan["cmd_t"]) == ("fan", f"{BASE}/cmd/ventilation/air")
    # One stage: on and off only (HA rejects a speed range of one, found with a real HA).
    assert "spd_rng_max" not in fan and "pct_cmd_t" not in fan
    two_stages = VentilationConfig("air", ("a", "b"), "co2", co2_high=1400)
    two = ventilation.PUBLISHED.entities(two_stages, Topics(BASE))["ventilation_air"]
    assert (two["spd_rng_min"], two["spd_rng_max"]) == (1, 2)
    assert two["pct_cmd_t"] == f"{BASE}/cmd/ventilation/air/stage"
    assert fan["pr_modes"] == ["auto", "boost"]
    assert group["stat_val_tpl"] == "{{ 'ON' if value_json['on'] else 'OFF' }}"
    assert group["cmd_t"] == f"{BASE}/cmd/lights/hall"
    assert (group["pl_on"], group["pl_off"]) == ("ON", "OFF")


def test_inputs_become_binary_sensors(payload: dict[str, Any]) -> None:
    expected = {  # name: (device class, payload_on, payload_off)
        "pir": ("motion", "motion", "clear"),
        "door": ("opening", "open", "closed"),  # HA: on means open; the contact is closed when shut
        "wall": (None, "pressed", "released"),
        "master": (None, "on", "off"),
    }
    for name, (device_class, on, off) in expected.items():
        comp = payload["cmps"][f"input_{name}"]
        assert comp["p"] == "binary_sensor"
        assert comp["stat_t"] == f"{BASE}/input/{name}"
        assert comp["val_tpl"] == "{{ value_json['state'] }}"
        assert (comp["pl_on"], comp["pl_off"]) == (on, off)
        assert comp.get("dev_cla") == device_class


@pytest.mark.parametrize(("zone", "sensor", "hvac", "min_temp"), [
    ("chamber", "climate", ["heat", "cool", "heat_cool"], 7.0),
    ("annex", "co2", ["heat"], 5.0),  # frost 5 °C: the slider reaches it
    ("server", "climate", ["cool"], 7.0),
])  # fmt: skip
def test_zones_become_climate_entities(
    payload: dict[str, Any], zone: str, sensor: str, hvac: list[str], min_temp: float
) -> None:
    comp = payload["cmps"][f"zone_{zone}"]
    state = f"{BASE}/zone/{zone}"
    assert comp["p"] == "climate"
    # Exactly what the zone's relays can do: HA's heat never offers a zone that only cools.
    assert comp["modes"] == ["off", *hvac]
    assert comp["pr_modes"] == ["comfort", "eco", "boost", "frost"]  # never "none"
    for key in ("mode_stat_t", "pr_mode_stat_t", "temp_stat_t", "act_t"):
        assert comp[key] == state
    assert comp["mode_cmd_t"] == f"{BASE}/cmd/zone/{zone}/mode"
    assert comp["pr_mode_cmd_t"] == f"{BASE}/cmd/zone/{zone}/preset"
    # HA sends "none" when no preset is chosen; the command path's word is auto.
    assert comp["pr_mode_cmd_tpl"] == "{{ 'auto' if value == 'none' else value }}"
    assert comp["temp_cmd_t"] == f"{BASE}/cmd/zone/{zone}/setpoint"
    assert comp["curr_temp_t"] == f"{BASE}/state/{sensor}"
    assert comp["curr_temp_tpl"] == "{{ value_json['values'].get(\"temperature\", '') }}"
    assert comp["mode_stat_tpl"] == "{{ value_json['hvac'] }}"
    presets = "['comfort', 'eco', 'boost', 'frost']"
    assert comp["pr_mode_val_tpl"] == (
        f"{{{{ value_json['mode'] if value_json['mode'] in {presets} else 'none' }}}}"
    )
    assert comp["temp_stat_tpl"] == "{{ value_json['setpoint'] }}"
    assert comp["act_tpl"] == "{{ value_json['action'] }}"
    assert (comp["min_temp"], comp["max_temp"]) == (min_temp, 35.0)
    assert comp["temp_step"] == 0.5
    assert comp["precision"] in (0.1, 0.5, 1.0)  # climate.py accepts only these
    assert comp["temp_unit"] == "C"


def test_scenes_become_scene_entities_that_send_on(payload: dict[str, Any]) -> None:
    # HA's MQTT scene: command_topic required, payload_on defaults to "ON" (sent explicitly so
    # the contract does not rest on a default); no state topic, as a scene has none.
    scene = payload["cmps"]["scene_council-session"]
    assert scene == {
        "p": "scene",
        "name": "council-session",
        "cmd_t": f"{BASE}/cmd/scene/council-session",
        "pl_on": "ON",
        "uniq_id": f"{UID}_scene_council-session",
        "qos": 1,
    }


def test_energy_sensors_for_metered_relays_and_the_total(payload: dict[str, Any]) -> None:
    cmps = payload["cmps"]
    for unrated in ("aircon", "lamp", "spare"):
        assert f"relay_{unrated}_energy" not in cmps
    expected = {f"relay_{n}_energy": f"{{{{ value_json['relays_kwh'].get(\"{n}\", '') }}}}"
                for n in ("heater", "cooler", "radiator", "lights", "fan")}  # fmt: skip
    expected["energy_total"] = "{{ value_json['total_kwh'] }}"
    for key, template in expected.items():
        comp = cmps[key]
        assert comp["p"] == "sensor"
        assert comp["stat_t"] == f"{BASE}/counters/energy"  # retained
        assert comp["val_tpl"] == template
        assert (comp["dev_cla"], comp["stat_cla"]) == ("energy", "total_increasing")
        assert comp["unit_of_meas"] == "kWh" and comp["unit_of_meas"] in HA_UNITS["energy"]


def test_every_topic_is_one_the_agent_publishes_or_reads(
    cfg: Config, payload: dict[str, Any]
) -> None:
    c = cfg.control
    published = {f"{BASE}/status", f"{BASE}/counters/energy", f"{BASE}/lights/hall"}
    published |= {f"{BASE}/ventilation/air"}
    published |= {f"{BASE}/state/{d.name}" for d in cfg.devices}
    published |= {f"{BASE}/relay/{r.name}" for r in c.relays}
    # Added with discovery; the runtime starts publishing these (see the report).
    published |= {f"{BASE}/input/{i.name}" for i in c.inputs}
    published |= {f"{BASE}/zone/{z.name}" for z in c.zones}
    published.add(f"{BASE}/faults")  # issue 22: the faults in force (agent/analytics)
    # What agent/commands/handlers.py takes: free relays, light groups, zones.
    handled = {f"{BASE}/cmd/relay/{n}" for n in ("lamp", "spare")} | {f"{BASE}/cmd/lights/hall"}
    handled |= {f"{BASE}/cmd/lights/hall/effect", f"{BASE}/cmd/ventilation/air"}
    handled |= {f"{BASE}/cmd/ventilation/air/{w}" for w in ("stage", "preset")}
    handled |= {f"{BASE}/cmd/scene/council-session"}
    handled |= {f"{BASE}/cmd/zone/{z.name}/{w}" for z in c.zones
                for w in ("setpoint", "mode", "preset")}  # fmt: skip
    for key, comp in payload["cmps"].items():
        topic_keys = {k for k in comp if k.endswith("_t")}
        assert topic_keys <= STATE_KEYS | COMMAND_KEYS, key  # every topic key is classified
        for k in topic_keys & STATE_KEYS:
            assert comp[k] in published, (key, k)
        for k in topic_keys & COMMAND_KEYS:
            assert comp[k].startswith(f"{BASE}/cmd/") and comp[k] in handled, (key, k)
        assert all(e["t"] in published for e in comp.get("avty", []))
    # The topics that exist today are those of the contract.
    doc = (REPO / "docs" / "mqtt.md").read_text()
    for pattern in ("`<base>/status`", "`<base>/state/<device>`", "`<base>/relay/<name>`",
                    "`<base>/energy`", "`<base>/cmd/...`"):  # fmt: skip
        assert pattern in doc


def test_the_payload_is_small(cfg: Config) -> None:
    raw = discovery_payload(cfg, "9.9.9")[1]
    demo = discovery_payload(config.load(REPO / "firmware_configs" / "demo.toml"), "0.1.0")[1]
    print(f"\ndiscovery payload: {len(raw)} bytes (test node), {len(demo)} bytes (demo.toml)")
    # mosquitto's default message_size_limit is the protocol's 256 MB; this is our own budget,
    # far below it and below the 128 KiB some hosted brokers allow.
    assert len(raw) < 64 * 1024 and len(demo) < 64 * 1024
    raw.decode("utf-8")  # UTF-8, like every payload of the contract


def test_removal_sends_each_removed_component_once_with_only_its_platform(
    tmp_path: Path,
) -> None:
    before = discovery_payload(load(tmp_path, EXTRA, "before.toml"), "1")[1]
    after = discovery_payload(load(tmp_path, "", "after.toml"), "1")[1]
    removal = removal_payload(before, after)
    assert removal is not None
    body, now = json.loads(removal), json.loads(after)
    assert body["cmps"]["relay_extra"] == {"p": "switch"}
    assert body["cmps"]["relay_extra_energy"] == {"p": "sensor"}
    rest = {k: v for k, v in body["cmps"].items() if k not in ("relay_extra", "relay_extra_energy")}
    assert rest == now["cmps"]
    assert {k: v for k, v in body.items() if k != "cmps"} == {
        k: v for k, v in now.items() if k != "cmps"
    }
    assert removal_payload(after, after) is None
    assert removal_payload(after, before) is None  # only additions
    assert removal_payload(b"", after) is None
    assert removal_payload(b"not json", after) is None


def test_home_assistant_birth_message() -> None:
    assert status_topic() == "homeassistant/status"
    assert status_topic("ha") == "ha/status"
    assert ha_status_is_online(b"online")
    assert ha_status_is_online(b"online\n")
    assert not ha_status_is_online(b"offline")
    assert not ha_status_is_online(b"")


def test_names_that_collide_as_ids_are_refused(tmp_path: Path) -> None:
    # A metered relay "extra" has the energy sensor relay_extra_energy; a relay called
    # "extra_energy" would be the switch relay_extra_energy.
    clash = EXTRA + '[[relays]]\nname = "extra_energy"\npin = 21\n'
    cfg = load(tmp_path, clash)
    with pytest.raises(ValueError, match="relay_extra_energy"):
        discovery_payload(cfg, "1")


@pytest.mark.parametrize("name", ["heat er", "a/b", "x+", "-lead", "x" * 65])
def test_a_name_that_cannot_be_a_topic_level_is_refused_by_the_config(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(config.ConfigError, match=r"relays\[8\]\.name: must be 1-64 letters"):
        load(tmp_path, f'[[relays]]\nname = "{name}"\npin = 20\n')


def test_the_controls_entities_are_what_they_were_byte_for_byte(tmp_path: Path) -> None:
    body = discovery_payload(load(tmp_path, extra_relay=TWO_STAGES), "9.9.9")[1]
    assert body == CONTROLS_GOLDEN.read_bytes()
    cmps = json.loads(body)["cmps"]
    # What it pins: each kind of control and input, in the order PUBLISHED gives.
    kinds = [key.split("_")[0] for key in cmps if key.split("_")[0] in
             ("lights", "ventilation", "input", "zone")]  # fmt: skip
    assert sorted(set(kinds), key=kinds.index) == ["lights", "ventilation", "input", "zone"]
    assert cmps["ventilation_hall-air"]["spd_rng_max"] == 2
