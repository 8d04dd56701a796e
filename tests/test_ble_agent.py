"""BLE in the whole agent, against a real mosquitto: a simulated BTHome sensor (encrypted, real
advertisement bytes through bleak's scanner with the simulated backend) publishes like an I2C
device, through the same buffer, while the broker is down too; it goes unavailable when it
falls silent; Home Assistant learns its entities; bleak is not even imported by a node
without BLE."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

from agent.app.runtime import Agent
from agent.config import schema as config_mod
from tests.ble_adv import make_adv
from tests.conftest import REPO, AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber, free_port
from tests.waiting import until, wait_until

BASE = "roomagent/test-node"
KEY = "231d39c1d7cc1ab1aee224cd096db932"
BLE = textwrap.dedent(f"""
    [ble]
    stall_timeout = 10
    [[ble.devices]]
    name = "window"
    address = "A4:C1:38:5E:12:01"
    format = "bthome"
    key = "{KEY}"
    interval = 1
    unavailable_after = 2
""")


def test_a_ble_sensor_publishes_telemetry_state_and_discovery(
    broker: Broker, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    sub = Subscriber(broker.port, "#")
    agent = agent_process(node_config(broker.port, tmp_path / "state") + BLE)
    agent.start()
    try:
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic.endswith(
            "/telemetry/window")]) >= 2), agent.output()  # fmt: skip
        body = json.loads(sub.on(f"{BASE}/telemetry/window")[0].payload)
        assert set(body) == {"ts", "seq", "clock_synced", "values"}
        values = body["values"]
        # The simulated sensor by the window: the room's temperature less 1.2 °C, battery 87 %.
        assert set(values) == {"temperature", "humidity", "battery", "voltage"}
        assert 15 < values["temperature"] < 30 and values["battery"] == 87
        state = json.loads(sub.on(f"{BASE}/state/window")[-1].payload)
        assert state["available"] is True and set(state["values"]) == set(values)
        info = json.loads(sub.on(f"{BASE}/info")[0].payload)
        assert info["ble_devices"] == [
            {"name": "window", "address": "A4:C1:38:5E:12:01", "format": "bthome"}
        ]
        # Discovery is published again once the sensor's quantities are known.
        discovery = "homeassistant/device/test-node/config"

        def announced() -> list[dict[str, Any]]:
            return [json.loads(m.payload)["cmps"] for m in sub.on(discovery)]

        assert sub.wait_for(lambda ms: any("window_temperature" in c for c in announced()))
        cmps = announced()[-1]
        assert cmps["window_temperature"]["dev_cla"] == "temperature"
        assert cmps["window_battery"]["dev_cla"] == "battery"
        assert cmps["window_battery"]["unit_of_meas"] == "%"
        assert cmps["window_temperature"]["stat_t"] == f"{BASE}/state/window"

        # The health report carries the scanner's counters.
        def healths() -> list[dict[str, Any]]:
            return [json.loads(m.payload)["ble"] for m in sub.on(f"{BASE}/state/agent")]

        assert sub.wait_for(lambda ms: any(h["adverts"] > 0 for h in healths()), 12)
        health = healths()[-1]
        assert health["scanning"] is True and health["devices_up"] == 1
        assert (health["replays"], health["key_errors"], health["errors"]) == (0, 0, 0)
    finally:
        assert agent.terminate() == 0
        sub.close()
    assert (tmp_path / "state" / "ble_quantities.json").exists()


@pytest.mark.long
def test_ble_readings_wait_in_the_buffer_while_the_broker_is_away(
    tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    port = free_port()
    agent = agent_process(node_config(port, tmp_path / "state") + BLE)
    agent.start()
    db = tmp_path / "state" / "buffer.sqlite"

    def buffered() -> list[int]:
        # The agent may not have made the file, or its table, yet: nothing buffered so far.
        if not db.exists():
            return []
        try:
            with sqlite3.connect(db) as c:
                rows = c.execute("SELECT seq FROM outbox WHERE topic = ?",
                                 (f"{BASE}/telemetry/window",))  # fmt: skip
                return [r[0] for r in rows]
        except sqlite3.OperationalError:  # no such table yet, or the agent holds a lock
            return []

    def three_or_more() -> list[int]:
        rows = buffered()
        return rows if len(rows) >= 3 else []

    seqs = wait_until(three_or_more, timeout=20)
    assert seqs, agent.output()
    broker = Broker(tmp_path / "broker", port=port)
    broker.start()
    sub = Subscriber(port, f"{BASE}/telemetry/window")
    try:
        # The agent reconnects within reconnect_max (1 s) and sends the backlog, oldest first.
        assert sub.wait_for(lambda ms: {json.loads(m.payload)["seq"] for m in ms} >= set(
            seqs), 20), agent.output()  # fmt: skip
    finally:
        agent.terminate()
        sub.close()
        broker.stop()


def test_a_sensor_that_falls_silent_is_published_unavailable(
    broker: Broker, tmp_path: Path
) -> None:
    path = tmp_path / "node.toml"
    # The room's thermostat regulates on the BLE thermometer by the window.
    zone = textwrap.dedent("""
        quantities = ["temperature", "humidity", "battery", "voltage"]
        [[relays]]
        name = "heater"
        pin = 17
        kind = "heat"
        [[zones]]
        name = "chamber"
        sensor = "window"
        heat = ["heater"]
        comfort = 21.0
        eco = 17.0
        boost = 23.0
    """)
    path.write_text(node_config(broker.port, tmp_path / "state") + BLE + zone)
    agent = Agent(config_mod.load(path), simulate=True)
    sub = Subscriber(broker.port, f"{BASE}/state/window")

    def states() -> list[bool]:
        return [json.loads(m.payload)["available"] for m in sub.on("/state/window")]

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.ensure_future(agent.run(stop))
        try:
            assert await until(lambda: True in states())
            assert await until(lambda: agent.room.zone_temperature("chamber") is not None)
            temperature = agent.room.zone_temperature("chamber")
            assert 15 < temperature < 30, temperature
            radio = agent.ble.scanner.backend.radio
            (sensor,) = radio.transmitters
            sensor.present = lambda: False  # the battery died
            assert await until(lambda: states()[-1] is False)
            last = json.loads(sub.on("/state/window")[-1].payload)
            assert last["error"].startswith("nothing decodable heard for 2 s")
            assert agent.ble.health()["devices_down"] == 1
            assert "BLE 0/1 up" in agent.status_line()
            sensor.present = lambda: True  # a new battery
            assert await until(lambda: states()[-1] is True)
        finally:
            stop.set()
            await run

    try:
        asyncio.run(scenario())
    finally:
        sub.close()


CHECK_IMPORTS = """
import asyncio, sys
from agent.config import schema as config
from agent.app.runtime import Agent
agent = Agent(config.load(sys.argv[1]), simulate=True)
async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.5, stop.set)
    await agent.run(stop)
asyncio.run(main())
print(sorted(m for m in ("bleak", "dbus_fast", "cryptography", "drivers.ble") if m in sys.modules))
"""


def test_bleak_is_imported_only_when_the_config_has_ble(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the agent buffers, which is all this needs
    without = tmp_path / "without.toml"
    without.write_text(node_config(port, tmp_path / "s1"))
    with_ble = tmp_path / "with.toml"
    with_ble.write_text(node_config(port, tmp_path / "s2") + BLE)

    def loaded(path: Path) -> list[str]:
        out = subprocess.run([sys.executable, "-c", CHECK_IMPORTS, str(path)], cwd=REPO,
                             capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))

    assert loaded(without) == []
    assert loaded(with_ble) == ["bleak", "cryptography", "drivers.ble"]


# Home Assistant discovery of BLE entities, checked like tests/test_discovery.py checks the rest.

DISCOVERY_NODE = """
[node]
id = "test-node"
state_dir = "state"
[ble]
[[ble.devices]]
name = "window"
address = "A4:C1:38:5E:12:01"
[[ble.devices]]
name = "door"
address = "A4:C1:38:5E:12:02"
quantities = ["opening", "battery"]
[[ble.presence]]
name = "badges"
beacons = ["C8:FD:19:00:00:01"]
"""
# HA sensor/const.py DEVICE_CLASS_UNITS for the BLE device classes used below.
BLE_HA_UNITS = {"battery": {"%"}, "temperature": {"°C", "°F", "K"}}


def test_ble_entities_in_discovery(tmp_path: Path) -> None:
    from agent.central.ha_discovery import discovery_payload
    from tests.ha_abbreviations import ABBREVIATIONS, UNABBREVIATED

    path = tmp_path / "node.toml"
    path.write_text(DISCOVERY_NODE)
    cfg = config_mod.load(path)
    numbers = ("temperature", "temperature_2", "battery", "tx_power")
    learned = {"window": {**dict.fromkeys(numbers, "number"), "motion": "binary"}}
    cmps = json.loads(discovery_payload(cfg, "9.9.9", ble_quantities=learned)[1])["cmps"]
    assert set(cmps) == {
        "window_temperature",
        "window_temperature_2",
        "window_battery",
        "window_motion",
        "door_opening",
        "door_battery",
        "badges_occupancy",
        "badges_occupied",
    }  # fmt: skip  (tx_power is the beacon's calibration, not a measurement)
    for key, comp in cmps.items():
        assert all(k in ABBREVIATIONS or k in UNABBREVIATED for k in comp), key
        assert comp["uniq_id"] == f"roomagent_test-node_{key}" and comp["qos"] == 1
        device = key.split("_")[0]
        assert comp["stat_t"] == f"{BASE}/state/{device}"
        assert comp["avty"][1] == {
            "t": f"{BASE}/state/{device}",
            "val_tpl": "{{ 'online' if value_json['available'] else 'offline' }}",
        }
        if comp.get("p") == "sensor" and "dev_cla" in comp:
            assert comp["unit_of_meas"] in BLE_HA_UNITS[comp["dev_cla"]], key
    temp2 = cmps["window_temperature_2"]
    assert (temp2["name"], temp2["dev_cla"], temp2["unit_of_meas"]) == (
        "window temperature 2", "temperature", "°C",
    )  # fmt: skip
    assert temp2["val_tpl"] == "{{ value_json['values'].get(\"temperature_2\", '') }}"
    motion = cmps["window_motion"]
    assert (motion["p"], motion["dev_cla"], motion["pl_on"], motion["pl_off"]) == (
        "binary_sensor", "motion", "True", "False",
    )  # fmt: skip
    assert cmps["door_opening"]["p"] == "binary_sensor"  # from the config: nothing heard yet
    assert cmps["door_battery"]["dev_cla"] == "battery"
    assert cmps["badges_occupied"]["dev_cla"] == "occupancy"
    assert cmps["badges_occupancy"]["stat_cla"] == "measurement"


AIR_NODE = """
[node]
id = "test-node"
state_dir = "state"
[ble]
[[ble.devices]]
name = "air"
address = "CB:B8:33:4C:88:4F"
format = "ruuvi"
"""
# HA sensor/const.py DEVICE_CLASS_UNITS for the classes a Ruuvi Air's quantities get.
AIR_HA_UNITS = {
    "temperature": {"°C", "°F", "K"}, "humidity": {"%"}, "atmospheric_pressure": {"hPa", "kPa"},
    "carbon_dioxide": {"ppm"}, "pm1": {"µg/m³"}, "pm25": {"µg/m³"}, "pm10": {"µg/m³"},
    "illuminance": {"lx"},
}  # fmt: skip


def test_a_ruuvi_air_gets_its_entities_from_the_one_quantity_table(tmp_path: Path) -> None:
    # What the service learns from a decoded Ruuvi Air E1 frame (the Ruuvi docs' valid-data
    # vector), made into entities: the air-quality quantities follow drivers/quantities.py.
    from agent.central.ha_discovery import discovery_payload
    from drivers.ble import decode

    e1 = "E1170C5668C79E0065007004BD11CA00C90A0213E0ACFFFFFFDECDEE01FFFFFFFFFFCBB8334C884F"
    values = decode("CB:B8:33:4C:88:4F", make_adv(manufacturer_data={0x0499: bytes.fromhex(e1)}))
    assert values is not None
    learned = {"air": {q: "binary" if isinstance(v, bool) else "number" for q, v in values.items()}}
    path = tmp_path / "node.toml"
    path.write_text(AIR_NODE)
    cmps = json.loads(discovery_payload(config_mod.load(path), "9.9.9", ble_quantities=learned)[1])[
        "cmps"
    ]
    assert set(cmps) == {f"air_{q}" for q in values}
    for key, comp in cmps.items():
        if comp["p"] == "sensor" and "dev_cla" in comp:
            assert comp["unit_of_meas"] in AIR_HA_UNITS[comp["dev_cla"]], key
    assert cmps["air_co2"]["dev_cla"] == "carbon_dioxide"
    assert cmps["air_pm2_5"]["dev_cla"] == "pm25"
    assert (cmps["air_pm4_0"]["name"], cmps["air_pm4_0"]["unit_of_meas"]) == ("air PM4", "µg/m³")
    assert "dev_cla" not in cmps["air_pm4_0"]  # no PM4 class in the HA releases supported
    for index in ("voc_index", "nox_index"):
        assert "dev_cla" not in cmps[f"air_{index}"] and "unit_of_meas" not in cmps[f"air_{index}"]
        assert cmps[f"air_{index}"]["sug_dsp_prc"] == 0
    assert cmps["air_calibrating"]["p"] == "binary_sensor"
