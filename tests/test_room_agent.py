"""The agent with a [room]: comfort and occupancy published, a session reported across a
SIGKILL, sessions pushed over MQTT, Home Assistant told. Real mosquitto, the agent as a
subprocess with --simulate, whose simulated room is the closed-loop model."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber

BASE = "roomagent/test-node"
CATEGORIES = {"I", "II", "III", "IV"}

DEVICES = """
[[devices]]
name = "climate"
driver = "bme280"
interval = 1
[[devices]]
name = "air"
driver = "scd4x"
interval = 5
[[relays]]
name = "fan_low"
pin = 22
kind = "fan"
rated_power_w = 80
[[relays]]
name = "fan_high"
pin = 23
kind = "fan"
rated_power_w = 160
[[ventilation]]
name = "air"
relays = ["fan_low", "fan_high"]
co2_sensor = "air"
co2_on = 900
co2_off = 750
co2_high = 1100
[room]
volume_m3 = 60
seats = 12
co2_sensor = "air"
temperature_sensor = "climate"
ventilation = "air"
stage_airflow_m3h = [180, 360]
comfort_interval = 5
"""


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


def config(broker: Broker, state: Path, session: tuple[float, float]) -> str:
    sessions = f"""
[[sessions]]
start = "{iso(session[0])}"
end = "{iso(session[1])}"
title = "Committee"
"""
    return node_config(broker.port, state, devices=DEVICES + sessions)


def test_comfort_occupancy_and_discovery_are_published(
    broker: Broker, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    sub = Subscriber(broker.port, "#")
    now = time.time()
    agent = agent_process(config(broker, tmp_path / "state", (now + 3600, now + 7200)))
    agent.start()
    assert sub.wait_for(lambda ms: any(m.topic == f"{BASE}/comfort" for m in ms)
                        and any(m.topic == f"{BASE}/occupancy" for m in ms),
                        timeout=60), agent.output()[-3000:]  # fmt: skip
    # The SCD4x gives its first reading after 5 s: wait for a comfort state that grades CO2.
    assert sub.wait_for(
        lambda ms: any(m.topic == f"{BASE}/comfort" and json.loads(m.payload)["co2"]["category"]
                       for m in ms), timeout=60)  # fmt: skip
    comfort = [json.loads(m.payload) for m in sub.on(f"{BASE}/comfort")][-1]
    late = Subscriber(broker.port, f"{BASE}/comfort")  # a late joiner gets the retained state
    assert late.wait_for(lambda ms: len(ms) >= 1) and late.messages[0].retain
    late.close()
    assert comfort["category"] in CATEGORIES and comfort["season"] in ("heating", "cooling")
    assert comfort["co2"]["category"] in CATEGORIES and comfort["co2"]["outdoor"] == 420
    assert comfort["operative_temperature"]["category"] in CATEGORIES
    occupancy = json.loads(sub.on(f"{BASE}/occupancy")[-1].payload)
    assert set(occupancy) == {"ts", "people", "estimate", "uncertainty", "method"}
    discovery = json.loads(sub.on("homeassistant/device/test-node/config")[-1].payload)
    for key in ("comfort_category", "comfort_co2_category", "occupancy_people"):
        assert key in discovery["cmps"], sorted(discovery["cmps"])
    assert discovery["cmps"]["occupancy_people"]["stat_t"] == f"{BASE}/occupancy"

    # A calendar pushed over MQTT: answered; a bad one refused with the entry named.
    answers = Subscriber(broker.port, f"{BASE}/cmd/response")
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    good = {"id": "s1", "sessions": [{"start": iso(now + 7200), "end": iso(now + 9000)}]}
    bad = {"id": "s2", "sessions": [{"start": iso(now + 7200), "end": iso(now)}]}
    for body in (good, bad):
        pub.publish(f"{BASE}/cmd/sessions", json.dumps(body), qos=1).wait_for_publish(5)
    assert answers.wait_for(lambda ms: len(ms) >= 2, timeout=20), agent.output()[-3000:]
    replies = {json.loads(m.payload)["id"]: json.loads(m.payload) for m in answers.messages}
    assert replies["s1"]["ok"] is True, replies
    assert replies["s2"]["ok"] is False and "sessions[0].end" in replies["s2"]["reason"]
    pub.loop_stop()
    pub.disconnect()
    answers.close()
    assert agent.terminate() == 0
    sub.close()


@pytest.mark.long
def test_a_session_report_survives_a_sigkill(
    broker: Broker, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    state = tmp_path / "state"
    # The recorder saves its progress at its first look into the session, then once a minute
    # (session_report.PERSIST_EVERY): 10 s in, the first agent has saved it. The second agent
    # gets the 20 s left, room for a slow start and the SCD4x's first reading (5 s).
    start = time.time() + 6
    session = (start, start + 30)
    sub = Subscriber(broker.port, f"{BASE}/sessions", persistent=True, client_id="central")
    first = agent_process(config(broker, state, session))
    first.start()
    # Well into the session (its progress saved), the agent dies without a word.
    deadline = start + 10
    while time.time() < deadline:  # the scenario: wall time, well into the session
        time.sleep(0.5)
    first.kill()
    second = agent_process(config(broker, state, session))
    second.start()
    assert sub.wait_for(lambda ms: len(ms) >= 1, timeout=90), second.output()[-3000:]
    report = json.loads(sub.messages[0].payload)
    assert report["start"] == iso(session[0]).replace("+00:00", "Z")
    assert report["title"] == "Committee"
    assert set(report) >= {
        "start", "end", "energy_kwh", "co2_peak", "co2_mean",
        "minutes_outside_category_ii", "peak_occupancy_estimate", "seq",
    }  # fmt: skip
    assert report["co2_peak"] is not None and report["co2_mean"] is not None
    # One report for one session, even after another restart.
    assert second.terminate() == 0
    third = agent_process(config(broker, state, session))
    third.start()
    assert not sub.wait_for(lambda ms: len(ms) >= 2, timeout=12)
    assert third.terminate() == 0
    sub.close()
