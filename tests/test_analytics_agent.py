"""Fault detection and optimum start in the agent (issue 22): config tables checked like the
others, learned state kept across restarts and pushed configs, a corrupt state discarded with a
log line, and a fault end to end (real mosquitto, the agent as a subprocess with --simulate):
an event through the buffer, `<base>/faults` retained and Home Assistant's problem sensor."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import pytest

from agent.analytics.service import STATE_FILE, Analytics
from agent.common.state_store import StateStore
from tests.analytics_room import (
    T0,
    analytics,
    errors_of,
    load,
    warm_ups,
)
from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber

BASE = "roomagent/test-node"


def test_fault_thresholds_and_optimum_start_are_read(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
[room.optimum_start]
max_lead_minutes = 240
[faults]
window_open_minutes = 15
frozen_readings = 40
[faults.disagree]
temperature = 1.5
""")  # fmt: skip
    assert cfg.faults.window_open_minutes == 15.0
    assert cfg.faults.frozen_readings == 40
    # The table is merged over the defaults: humidity and CO2 keep theirs.
    assert dict(cfg.faults.disagree) == {"temperature": 1.5, "humidity": 10.0, "co2": 250.0}
    assert cfg.room.optimum_start.max_lead_minutes == 240.0
    # Until learned, the fixed lead is the room's preheat_minutes.
    assert cfg.room.optimum_start.fixed_lead_minutes == 90.0


def test_without_the_tables_faults_run_on_defaults_and_the_preheat_stays_fixed(
    tmp_path: Path,
) -> None:
    cfg = load(tmp_path, "")
    assert cfg.faults is not None and cfg.faults.window_open_minutes == 10.0
    assert cfg.room.optimum_start is None
    off = load(tmp_path, "[faults]\nenabled = false\n[room.optimum_start]\nenabled = false\n")
    assert off.faults is None and off.room.optimum_start is None


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ("[faults]\nwindow_open_minutez = 5\n", "faults.window_open_minutez", "unknown key"),
        ("[faults]\nunmet_minutes = -5\n", "faults.unmet_minutes", ">= 0"),
        ("[faults]\ndisagree = 3\n", "faults.disagree", "must be a table"),
        ("[faults]\n[faults.disagree]\nco2 = 0\n", "faults", "disagree.co2"),
        ("[faults]\nenabled = 1\n", "faults.enabled", "true or false"),
        ("[room.optimum_start]\nlatest_start_minutes = 500\n",
         "room.optimum_start.latest_start_minutes", "must not exceed max_lead_minutes"),
        ("[room.optimum_start]\nmin_episodes = 0\n", "room.optimum_start.min_episodes", ">= 1"),
    ],
)  # fmt: skip
def test_a_bad_table_names_file_key_and_fix(
    tmp_path: Path, extra: str, key: str, words: str
) -> None:
    text = errors_of(tmp_path, extra)
    assert "node.toml" in text and f"{key}:" in text and words in text


# Learned state -------------------------------------------------------------------------------


def test_learned_state_survives_a_restart(tmp_path: Path) -> None:
    first = analytics(tmp_path)
    warm_ups(first, 4)
    learned = len(first.zones["room"].learner.episodes)
    assert learned >= 3
    first.close()
    again = analytics(tmp_path)  # a restart, or a pushed config building it anew
    assert len(again.zones["room"].learner.episodes) == learned
    # It plans from what it learned: 4 K to gain at the 3 K/h the room showed (x1.05 safety).
    decision = again.zones["room"].learner.plan(T0 + 10 * 86400, 21.0, 17.0, 2.0)
    assert decision.source == "learned"
    assert 4 / 3 * 60 * 1.05 * 0.85 <= decision.lead_minutes <= 4 / 3 * 60 * 1.05 * 1.15


def test_a_corrupt_learned_state_is_discarded_with_a_log_line_and_the_fixed_lead_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = analytics(tmp_path)
    warm_ups(first, 4)
    first.close()
    store = StateStore(tmp_path / STATE_FILE)  # as the agent keeps it
    state = json.loads(json.dumps(store.get("optimum_start.room.heat")))  # a copy: set() compares
    state["episodes"][0]["rate"] = 99.0  # the learned state's own checksum no longer fits
    store.set("optimum_start.room.heat", state)
    assert store.flush()
    with caplog.at_level(logging.WARNING, logger="roomagent.optimum_start"):
        again = analytics(tmp_path)
    assert any("discarded" in r.getMessage() and "checksum" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    decision = again.zones["room"].learner.plan(T0 + 10 * 86400, 21.0, 17.0, 2.0)
    assert decision.source == "fixed" and decision.lead_minutes == 90.0


# End to end ----------------------------------------------------------------------------------

DISAGREE = """
[[devices]]
name = "climate"
driver = "bme280"
interval = 1
[[devices]]
name = "air"
driver = "scd4x"
interval = 5
[[relays]]
name = "heat"
pin = 22
kind = "heat"
rated_power_w = 1500
[faults]
disagree_minutes = 0.05
[faults.disagree]
temperature = 0.0001
"""


@pytest.mark.long
def test_a_fault_is_an_event_a_retained_state_and_a_problem_sensor(
    broker: Broker, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    """Two simulated sensors of the room never read exactly alike: with the limit at 0.0001 K
    they disagree, and within a few seconds the fault is reported."""
    sub = Subscriber(broker.port, "#")
    agent = agent_process(node_config(broker.port, tmp_path / "state", devices=DISAGREE))
    agent.start()

    def faults(ms: list) -> list:
        return [json.loads(m.payload) for m in ms if m.topic == f"{BASE}/faults" and m.payload]

    assert sub.wait_for(lambda ms: any(f["problem"] for f in faults(ms)), timeout=60)
    active = next(f for f in faults(sub.messages) if f["problem"])["active"]
    assert active[0]["fault"] == "sensors_disagree"
    assert active[0]["subject"] == "air/climate.temperature"
    assert sub.wait_for(lambda ms: any(
        m.topic == f"{BASE}/events" and json.loads(m.payload).get("kind") == "fault"
        and json.loads(m.payload)["state"] == "detected" for m in ms), timeout=30)  # fmt: skip
    retained = Subscriber(broker.port, f"{BASE}/faults")
    assert retained.wait_for(lambda ms: bool(ms), timeout=10)
    disc = Subscriber(broker.port, "homeassistant/device/#")
    assert disc.wait_for(lambda ms: bool(ms), timeout=10)
    cmps = json.loads(disc.messages[0].payload)["cmps"]
    problem = next(c for c in cmps.values() if c.get("dev_cla") == "problem")
    assert problem["p"] == "binary_sensor" and problem["stat_t"] == f"{BASE}/faults"


def test_doctor_shows_active_faults_and_what_optimum_start_learned(tmp_path: Path) -> None:
    from agent.config.analytics import FaultConfig
    from agent.tools.doctor_analytics import check_analytics

    cfg = load(tmp_path, "[room.optimum_start]\n")
    state = cfg.node.state_dir
    state.mkdir(parents=True, exist_ok=True)
    a = Analytics(FaultConfig(frozen_readings=3), cfg.room.optimum_start, {"heat": "heat"},
                  {"room": (("heat",), 2.0)}, state)  # fmt: skip
    warm_ups(a, 4)
    for i in range(3):  # the same temperature in three separate readings: frozen
        a.observe(float(i), {}, {}, {}, {"climate": ({"temperature": 19.25}, float(i))}, {})
    events, body = a.faults(3.0, T0)
    assert [e.state for e in events] == ["detected"] and body is not None and body["problem"]
    a.close()
    results = {r.name: r for r in check_analytics(cfg)}
    assert results["faults"].ok is False
    assert "frozen climate.temperature" in results["faults"].detail
    learned = results["optimum start room"].detail
    assert "warm-ups learned" in learned and "last: start" in learned
