"""What central systems see (issue 17), against a real mosquitto and the agent as a subprocess:
each numbered defect of the issue, as a building manager met it.

1. every state retained from the first second, again on reannounce and HA's birth message,
   and after a command that changes nothing; 2. energy retained and never going down across a
   power cut; 3. heat means heat; 4. ventilation and light groups controllable, free relays
   switches; 5. any valid JSON string answered, ids echoed, empty payloads, error texts;
   6. a pushed [broker] change is refused even while --broker overrides it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import pytest

from agent.common.state_store import StateStore
from agent.config import schema as config_mod
from agent.config.sources import RemoteCopy, RemoteStore, effective, local_sha256
from agent.config.zones import ZoneConfig
from agent.control.relays import RelayBank, RelayConfig
from agent.control.thermostat import Thermostat
from tests.central import BASE, Central, CentralRoom
from tests.clocks import FakeClock
from tests.conftest import REPO, AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber, free_port
from tests.waiting import wait_until as wait

ROOM = """
[[devices]]
name = "co2"
driver = "scd4x"
interval = 5
[[relays]]
name = "socket"
pin = 5
rated_power_w = 100
[[relays]]
name = "heater"
pin = 22
kind = "heat"
rated_power_w = 2000
[[relays]]
name = "cooler"
pin = 27
kind = "cool"
rated_power_w = 2000
[[relays]]
name = "lamp"
pin = 23
kind = "light"
[[relays]]
name = "fan"
pin = 24
kind = "ventilation"
[[inputs]]
name = "door"
pin = 6
kind = "contact"
[[inputs]]
name = "pir"
pin = 13
kind = "motion"
[[zones]]
name = "chamber"
sensor = "climate"
heat = ["heater"]
cool = ["cooler"]
comfort = 21.0
eco = 17.0
boost = 23.0
[[lights]]
name = "hall"
relays = ["lamp"]
occupancy = ["pir"]
[[ventilation]]
name = "air"
relays = "fan"
co2_sensor = "co2"
min_run_minutes = 0
"""
DEVICES = '[[devices]]\nname = "climate"\ndriver = "bme280"\ninterval = 1\n'
RETAINED = (
    [f"{BASE}/relay/{r}" for r in ("socket", "heater", "cooler", "lamp", "fan")]
    + [f"{BASE}/input/{i}" for i in ("door", "pir")]
    + [f"{BASE}/zone/chamber", f"{BASE}/lights/hall", f"{BASE}/ventilation/air"]
    + [f"{BASE}/counters/energy"]
)


def latest(sub: Subscriber, topic: str) -> dict[str, Any] | None:
    msgs = [m for m in sub.on(topic) if m.topic == topic and m.payload]
    return json.loads(msgs[-1].payload) if msgs else None


class Node(CentralRoom):
    def __init__(self, tmp_path: Path, broker: Broker, make: Callable[[str], AgentProcess]) -> None:
        text = node_config(broker.port, tmp_path / "state", devices=DEVICES)
        super().__init__(broker, make, text + textwrap.dedent(ROOM))


@pytest.fixture
def node(tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
         ) -> Iterator[Node]:  # fmt: skip
    n = Node(tmp_path, broker, agent_process)
    yield n
    n.close()


# 1. States from the first second.


def test_every_state_is_retained_before_anything_changes(node: Node, broker: Broker) -> None:
    # A client that connects later gets every state from the broker's retained store alone.
    late = Subscriber(broker.port, f"{BASE}/#")
    try:
        assert wait(lambda: all(latest(late, t) for t in RETAINED), 10), [
            t for t in RETAINED if latest(late, t) is None
        ]
        assert all(m.retain for t in RETAINED for m in late.on(t) if m.topic == t)
    finally:
        late.close()
    assert latest(node.sub, f"{BASE}/relay/socket") == {
        **latest(node.sub, f"{BASE}/relay/socket"),  # type: ignore[dict-item]
        "on": False,
    }
    assert latest(node.sub, f"{BASE}/input/door")["state"] in ("open", "closed")  # type: ignore[index]
    assert latest(node.sub, f"{BASE}/lights/hall")["mode"] == "auto"  # type: ignore[index]
    vent = latest(node.sub, f"{BASE}/ventilation/air")
    assert vent is not None and vent["stages"] == 1 and vent["mode"] == "auto"


def test_a_command_that_changes_nothing_answers_and_republishes(node: Node) -> None:
    topic = f"{BASE}/relay/socket"
    assert wait(lambda: latest(node.sub, topic))
    before = len(node.sub.on(topic))
    reply = node.central.send("relay/socket", "OFF")  # it is off already
    assert reply is not None and reply["ok"] and reply["result"]["on"] is False
    assert wait(lambda: len(node.sub.on(topic)) > before, 5)
    assert latest(node.sub, topic)["on"] is False  # type: ignore[index]


def test_reannounce_and_home_assistant_birth_republish_every_state(
    node: Node, broker: Broker
) -> None:
    assert wait(lambda: all(latest(node.sub, t) for t in RETAINED), 10)
    for trigger in ("reannounce", "birth"):
        counts = {t: len(node.sub.on(t)) for t in RETAINED}
        if trigger == "reannounce":
            assert node.central.send("reannounce", b"")["ok"]  # type: ignore[index]
        else:
            ha = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
            ha.connect("127.0.0.1", broker.port)
            ha.loop_start()
            ha.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
            ha.loop_stop()
            ha.disconnect()
        assert wait(lambda c=counts: all(len(node.sub.on(t)) > c[t] for t in RETAINED), 10), trigger


def test_a_state_query_answers_with_the_state_and_republishes_it(node: Node) -> None:
    reply = node.central.send("state/zone/chamber", b"")
    assert reply is not None and reply["ok"], reply
    assert reply["result"]["topic"] == f"{BASE}/zone/chamber"
    assert reply["result"]["state"]["hvac"] == "heat_cool"
    energy = node.central.send("state/energy", b"")
    assert energy is not None and set(energy["result"]["state"]["relays_kwh"]) >= {"heater"}
    missing = node.central.send("state/relay/nope", b"")
    assert missing is not None and missing["code"] == "unknown_target"
    assert "no relay 'nope'" in missing["reason"]


# 2. Energy: retained, never down across a power cut.


def test_published_energy_never_exceeds_what_a_restart_resumes_from(tmp_path: Path) -> None:
    """A 1 kW load on for 30 s past the bank's save interval. It saves at most every
    ENERGY_FLUSH_INTERVAL while running, so the running figure is ahead of the saved one; what
    is published (the saved) must be what a restart after a power cut comes back with, or more."""
    from gpiozero.pins.mock import MockFactory

    from agent.control.relays import ENERGY_FLUSH_INTERVAL

    clock = FakeClock()
    path = tmp_path / "control.json"
    relay = RelayConfig("heater", 17, kind="heat", rated_power_w=1000)
    bank = RelayBank([relay], MockFactory(), clock, StateStore(path))
    bank.request("heater", True, "test")
    published = []
    seconds = int(ENERGY_FLUSH_INTERVAL) + 30
    for _ in range(seconds):
        clock.advance(1.0)
        bank.tick()
        published.append(bank.saved_energy_wh("heater"))
    assert bank.energy_wh("heater") == pytest.approx(seconds / 3.6, abs=0.01)  # 1000 W
    assert published == sorted(published)  # monotonic while it runs
    # Power cut: no close(), nothing more saved. The new bank reads the file again.
    after = RelayBank([relay], MockFactory(), FakeClock(), StateStore(path))
    assert after.energy_wh("heater") >= published[-1] > 0


def test_energy_counters_are_retained_for_a_late_subscriber(node: Node, broker: Broker) -> None:
    late = Subscriber(broker.port, f"{BASE}/counters/energy")
    try:
        assert late.wait_for(lambda ms: any(m.retain for m in ms), 10)
        body = json.loads(late.messages[-1].payload)
        assert set(body) >= {"ts", "relays_kwh", "total_kwh", "co2e_kg"}
    finally:
        late.close()


# 3. Heat means heat.


def test_heat_never_cools_and_cool_never_heats() -> None:
    clock = FakeClock()
    zone = Thermostat(ZoneConfig("z", "t", 21.0, 17.0, 23.0, ("h",), ("c",)), None, clock)
    zone.set_hvac("heat", "test")
    wants, _ = zone.update((30.0, clock.monotonic()))  # far above comfort + cool_offset
    assert {w.relay: w.on for w in wants} == {"h": False, "c": False}
    zone.set_hvac("cool", "test")
    wants, _ = zone.update((10.0, clock.monotonic()))  # far below comfort
    assert {w.relay: w.on for w in wants} == {"h": False, "c": False}
    zone.set_hvac("heat_cool", "test")
    wants, _ = zone.update((30.0, clock.monotonic()))
    assert {w.relay: w.on for w in wants} == {"h": False, "c": True}
    heat_only = Thermostat(ZoneConfig("y", "t", 21.0, 17.0, 23.0, ("h",)), None, clock)
    with pytest.raises(ValueError, match="can do heat"):
        heat_only.set_hvac("cool", "test")


def test_home_assistant_heat_mode_sets_heat_only(node: Node) -> None:
    reply = node.central.send("zone/chamber/mode", "heat")
    assert reply is not None and reply["ok"] and reply["result"]["hvac"] == "heat", reply
    assert wait(lambda: (latest(node.sub, f"{BASE}/zone/chamber") or {}).get("hvac") == "heat")
    off = node.central.send("zone/chamber/mode", "off")
    assert off is not None and off["result"]["mode"] == "off"
    assert wait(lambda: (latest(node.sub, f"{BASE}/zone/chamber") or {}).get("hvac") == "off")


# 4. What HA could not do.


def test_ventilation_stage_boost_and_back_to_automatic(node: Node) -> None:
    state = f"{BASE}/ventilation/air"
    reply = node.central.send("ventilation/air", "ON")
    assert reply is not None and reply["ok"] and reply["result"]["mode"] == "manual", reply
    assert wait(lambda: node.central.state("fan") is True)
    assert wait(lambda: (latest(node.sub, state) or {}).get("stage") == 1)
    boost = node.central.send("ventilation/air", json.dumps({"command": "boost", "minutes": 5}))
    assert boost is not None and boost["result"]["mode"] == "boost"
    assert wait(lambda: (latest(node.sub, state) or {}).get("mode") == "boost")
    off = node.central.send("ventilation/air", "OFF")
    assert off is not None and off["ok"]
    assert wait(lambda: node.central.state("fan") is False)
    auto = node.central.send("ventilation/air/preset", "auto")
    assert auto is not None and auto["result"]["mode"] == "auto"
    for value in ("2", "0.5"):
        bad = node.central.send("ventilation/air/stage", value)
        assert bad is not None and bad["code"] == "bad_argument" and "0..1" in bad["reason"], bad


def test_a_light_group_goes_back_to_automatic(node: Node) -> None:
    state = f"{BASE}/lights/hall"
    on = node.central.send("lights/hall", "ON")
    assert on is not None and on["ok"], (on, node.agent.output()[-3000:])
    assert wait(lambda: (latest(node.sub, state) or {}).get("mode") == "manual")
    assert wait(lambda: node.central.state("lamp") is True)
    reply = node.central.send("lights/hall/effect", "auto")
    assert reply is not None and reply["ok"] and reply["result"]["mode"] == "auto"
    assert wait(lambda: (latest(node.sub, state) or {}).get("mode") == "auto")


def test_the_demo_profile_has_a_relay_home_assistant_switches() -> None:
    from agent.central.ha_discovery import discovery_payload

    cfg = config_mod.load(REPO / "firmware_configs" / "demo.toml")
    cmps = json.loads(discovery_payload(cfg, "0")[1])["cmps"]
    assert cmps["relay_socket"]["p"] == "switch"


# 5. Commands: encoding, ids, empty payloads, error texts.


def test_a_lone_surrogate_id_is_answered_and_its_switch_recorded(node: Node) -> None:
    payload = b'{"id": "\\ud800", "command": "on"}'  # valid JSON; no UTF-8 form
    reply = node.central.send("relay/socket", payload)
    assert reply is not None and reply["ok"] and reply["id"] == "\ud800", reply
    assert wait(lambda: any(
        e.get("subject") == "socket" and e.get("state") == "on" and "\ud800" in e["reason"]
        for e in (json.loads(m.payload) for m in node.sub.on(f"{BASE}/events"))
    ))  # fmt: skip
    assert latest(node.sub, f"{BASE}/relay/socket")["on"] is True  # type: ignore[index]


def test_ids_up_to_128_characters_are_echoed_longer_ones_refused_saying_so(node: Node) -> None:
    longest = "é" * 128
    ok = node.central.send("ping", json.dumps({"id": longest}, ensure_ascii=False))
    assert ok is not None and ok["ok"] and ok["id"] == longest
    too_long = "x" * 129
    reply = node.central.send("relay/socket", json.dumps({"id": too_long, "command": "on"}))
    assert reply is not None and reply["ok"] is False and reply["id"] == too_long
    assert reply["code"] == "bad_argument" and "at most 128" in reply["reason"]
    assert node.central.state("socket") is not True  # not executed


@pytest.mark.parametrize("command", ["ping", "stats", "reannounce"])
def test_documented_empty_payload_commands_take_an_empty_payload(node: Node, command: str) -> None:
    reply = node.central.send(command, b"")
    assert reply is not None and reply["ok"], reply


def test_error_texts_name_the_real_problem(node: Node) -> None:
    reply = node.central.send("zone/chamber", "21")
    assert reply is not None and reply["code"] == "unknown_target"
    assert "missing the sub-topic" in reply["reason"] and "no zone" not in reply["reason"]
    empty = node.central.send("relay/socket", b"")
    assert empty is not None and "command: missing" in empty["reason"]


# 6. --broker must not mask a pushed [broker] change.


def test_a_pushed_broker_change_is_refused_under_a_broker_override(
    tmp_path: Path, broker: Broker
) -> None:
    state = tmp_path / "state"
    # The file names a broker nobody runs; --broker points the node at the real one.
    text = node_config(free_port(), state, devices=DEVICES) + textwrap.dedent(ROOM)
    path = tmp_path / "node.toml"
    path.write_text(text)
    log = tmp_path / "agent.log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "agent", "run", str(path), "--broker",
                                 f"127.0.0.1:{broker.port}"], stdout=out, stderr=out, env=env,
                                cwd=REPO)  # fmt: skip
    central = Central(broker.port)
    try:
        assert wait(lambda: central.send("ping", "{}", timeout=0.5) is not None, 20), (
            log.read_text()
        )
        elsewhere = text.replace("[broker]\n", "[broker]\n", 1)
        elsewhere = elsewhere.replace('host = "127.0.0.1"', 'host = "broker.elsewhere.example"')
        reply = central.send("config", json.dumps({"id": "c1", "config": elsewhere}))
        assert reply is not None and reply["code"] == "invalid_config", reply
        assert "broker" in reply["reason"]
        assert RemoteStore(state).load() is None  # nothing kept for the next start
        same = central.send("config", json.dumps({"id": "c2", "config": text}))
        assert same is not None and same["ok"], same  # the file's own broker: fine
    finally:
        central.close()
        proc.terminate()
        assert proc.wait(20) == 0


def test_a_stored_pushed_config_is_checked_again_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    text = node_config(1883, state)
    path = tmp_path / "node.toml"
    path.write_text(text)
    local = config_mod.load(path)
    pushed = text.replace('host = "127.0.0.1"', 'host = "broker.elsewhere.example"')
    state.mkdir(parents=True)
    RemoteStore(state).save(RemoteCopy(pushed, "mqtt", None, local_sha256(path)))
    cfg, origin = effective(local)
    assert origin == "file" and cfg.broker.host == "127.0.0.1"


def test_a_device_warming_up_is_available_with_no_values_yet(
    tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
) -> None:
    """Sensirion's VOC index is 0 ("not yet") for its first 45 samples and is not published;
    the device answers all along, so its state says available (HA: unknown, not unavailable)."""
    voc = DEVICES + '[[devices]]\nname = "voc"\ndriver = "sgp40"\ninterval = 1\n'
    sub = Subscriber(broker.port, f"{BASE}/state/voc")
    agent = agent_process(node_config(broker.port, tmp_path / "state", devices=voc))
    agent.start()
    try:
        assert sub.wait_for(lambda ms: bool(ms), 20), agent.output()
        first = json.loads(sub.messages[0].payload)
        assert first["available"] is True and first["values"] == {}
    finally:
        sub.close()
        assert agent.terminate() == 0
