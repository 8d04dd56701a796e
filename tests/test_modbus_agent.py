"""The agent with simulated meters on an RS-485 pty line and a Modbus TCP line, against a real
broker: readings, retained energy counters, Home Assistant energy sensors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import REPO, AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber

BASE = "roomagent/test-node"

METERS = textwrap.dedent("""
    [[modbus]]
    name = "rs485"
    serial = "/dev/ttyUSB0"
    [[modbus]]
    name = "gateway"
    tcp = "192.0.2.10:502"

    [[relays]]
    name = "lights"
    pin = 17
    kind = "light"
    rated_power_w = 400
    power_on = "on"

    [[devices]]
    name = "lights_meter"
    driver = "sdm120"
    bus = "rs485"
    address = 1
    interval = 1
    [devices.options]
    circuit_relays = ["lights"]

    [[devices]]
    name = "feeder"
    driver = "em24"
    bus = "gateway"
    address = 1
    interval = 1
""")


def test_meters_on_both_bus_kinds_publish_energy(
    broker: Broker, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    sub = Subscriber(broker.port, "#")
    agent = agent_process(node_config(broker.port, tmp_path / "state", devices=METERS))
    agent.start()
    try:
        assert sub.wait_for(
            lambda ms: (
                any(m.topic.endswith("/telemetry/lights_meter") for m in ms)
                and any(m.topic.endswith("/telemetry/feeder") for m in ms)
            ),
            timeout=30,
        ), agent.output()[-4000:]
        one = json.loads(sub.on(f"{BASE}/telemetry/lights_meter")[-1].payload)["values"]
        # the relay is on: the simulated circuit draws its rated 400 W at 230 V, PF 0.95
        assert one["power"] == 400.0 and one["voltage"] == 230.0
        assert one["current"] == round(400.0 / (230.0 * 0.95), 4)
        assert abs(one["co2e"] - one["energy_import"] * 0.25) <= 0.001
        three = json.loads(sub.on(f"{BASE}/telemetry/feeder")[-1].payload)["values"]
        assert three["power"] == 400.0 and three["power_l1"] == round(400.0 / 3, 1)
        late = Subscriber(broker.port, f"{BASE}/state/lights_meter")  # what a newcomer gets
        assert late.wait_for(lambda ms: len(ms) >= 1)
        state = late.messages[0]
        late.close()
        assert state.retain and "energy_import" in json.loads(state.payload)["values"]

        (disc,) = [m for m in sub.on("homeassistant/device/") if m.payload]
        cmps = json.loads(disc.payload)["cmps"]
        energy = cmps["lights_meter_energy_import"]
        assert (energy["dev_cla"], energy["stat_cla"], energy["unit_of_meas"]) == (
            "energy", "total_increasing", "kWh",
        )  # fmt: skip
        assert cmps["feeder_voltage_l2"]["unit_of_meas"] == "V"
        assert cmps["lights_meter_power"]["stat_cla"] == "measurement"
    finally:
        assert agent.terminate() == 0
        sub.close()
    saved = json.loads((tmp_path / "state" / "meters.json").read_text())
    assert set(saved["meters"]) == {"lights_meter", "feeder"}


def test_pymodbus_is_imported_only_with_a_modbus_line(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from agent.app import cli, runtime
        from agent.config import schema as config
        from agent.sensing.bus_choice import Hardware
        text = {node_config(1883, tmp_path)!r}
        cfg = config.loads(text, "n.toml", Path("/tmp"))
        Hardware(cfg.devices, True, cfg.modbus).bus(1)
        assert "pymodbus" not in sys.modules and "serial" not in sys.modules, "without"
        cfg = config.loads(text + {METERS!r}, "n.toml", Path("/tmp"))
        hw = Hardware(cfg.devices, True, cfg.modbus)
        hw.bus("gateway")
        assert "pymodbus" in sys.modules
        hw.close()
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.long
def test_counters_stay_monotonic_across_20_agent_restarts(
    broker: Broker, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    """The real agent, stopped and started 20 times on one state directory, with a simulated
    SDM120 whose circuit draws 36 kW (10 Wh a second, so that every reading moves the counter
    past its published resolution of 1 Wh): the published import counter never goes back, no
    reset is reported (the simulated meter goes on from its last reading, as a real one
    would)."""
    sub = Subscriber(broker.port, f"{BASE}/#")
    devices = METERS.replace("rated_power_w = 400", "rated_power_w = 36000")
    text = node_config(broker.port, tmp_path / "state", devices=devices)
    seen: list[float] = []
    for restart in range(20):
        agent = agent_process(text)
        before = len(sub.on("/telemetry/lights_meter"))
        agent.start()
        assert sub.wait_for(
            lambda ms, before=before: (
                sum(m.topic.endswith("/telemetry/lights_meter") for m in ms) >= before + 2
            ),
            timeout=30,
        ), agent.output()[-3000:]
        assert agent.terminate() == 0, restart
    for m in sub.on("/telemetry/lights_meter"):
        seen.append(json.loads(m.payload)["values"]["energy_import"])
    sub.close()
    assert len(seen) >= 40
    assert all(b >= a for a, b in zip(seen, seen[1:])), seen
    assert seen[-1] >= seen[0] + 20 * 0.01  # at least a second of 36 kW per run
    events = [json.loads(m.payload) for m in sub.on(f"{BASE}/events")]
    assert not [e for e in events if e["kind"] == "meter"], events


def test_read_and_check_config_work_for_meters(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(node_config(1883, tmp_path / "state", devices=METERS))
    cli = [sys.executable, "-m", "agent"]
    checked = subprocess.run([*cli, "check-config", str(path)], cwd=REPO, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    read = subprocess.run([*cli, "read", "feeder", "--json", "--config", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert read.returncode == 0, read.stderr
    shown = json.loads(read.stdout)
    values = {q: v["value"] for q, v in shown.items()}
    # no relay control in `read`: the simulated room's own draw, 230 V on each phase
    assert values["voltage_l1"] == 230.0 and values["frequency"] == 50.0
    assert shown["energy_import"]["unit"] == "kWh" and shown["power"]["unit"] == "W"
    phases = values["power_l1"] + values["power_l2"] + values["power_l3"]
    assert abs(values["power"] - phases) < 0.2  # per-phase figures are rounded to 0.1 W
    bad = path.read_text().replace('name = "gateway"', 'name = "gw"')
    path.write_text(bad)
    refused = subprocess.run([*cli, "check-config", str(path)], cwd=REPO, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert refused.returncode != 0
    assert "devices[1].bus: no [[modbus]] line named 'gateway'" in refused.stderr
