"""Home Assistant discovery on the wire: published retained on connect, again when Home
Assistant comes online, and not at all where it is turned off."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Callable

import paho.mqtt.client as mqtt

from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber

CONTROL = """
[[relays]]
name = "heater"
pin = 17
kind = "heat"
rated_power_w = 1000
[[inputs]]
name = "door"
pin = 5
kind = "contact"
[[zones]]
name = "chamber"
sensor = "climate"
heat = ["heater"]
comfort = 21.0
eco = 17.0
boost = 23.0
"""
TOPIC = "homeassistant/device/test-node/config"


def test_discovery_on_connect_and_when_home_assistant_comes_online(
    tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
) -> None:
    agent = agent_process(node_config(broker.port, tmp_path / "state") + textwrap.dedent(CONTROL))
    agent.start()
    sub = Subscriber(broker.port, "#")
    try:
        assert sub.wait_for(lambda ms: any(m.topic == TOPIC for m in ms)), agent.output()
        payload = json.loads(sub.on(TOPIC)[0].payload)
        assert payload["dev"]["ids"] == ["roomagent_test-node"]
        assert {c["p"] for c in payload["cmps"].values()} >= {"sensor", "climate", "binary_sensor"}
        # The zone's retained state, which the climate entity reads, is published too.
        assert sub.wait_for(lambda ms: any(m.topic.endswith("/zone/chamber") for m in ms))
        zone = json.loads(sub.on("/zone/chamber")[-1].payload)
        assert zone["action"] in ("heating", "idle") and zone["setpoint"] == 21.0
        before = len(sub.on(TOPIC))
        ha = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        ha.connect("127.0.0.1", broker.port)
        ha.loop_start()
        ha.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        assert sub.wait_for(lambda ms: len(sub.on(TOPIC)) > before, 10), agent.output()
        ha.loop_stop()
        ha.disconnect()
        assert agent.terminate() == 0
    finally:
        sub.close()


def test_discovery_can_be_turned_off(
    tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
) -> None:
    text = node_config(broker.port, tmp_path / "state", extra="discovery = false")
    agent = agent_process(text)
    agent.start()
    sub = Subscriber(broker.port, "#")
    try:
        assert sub.wait_for(lambda ms: any("/telemetry/" in m.topic for m in ms)), agent.output()
        assert not any(m.topic.startswith("homeassistant/") for m in sub.messages)
        assert agent.terminate() == 0
    finally:
        sub.close()
