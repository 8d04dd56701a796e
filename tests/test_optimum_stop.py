"""Optimum start's view of the hidden mass, and optimum stop applied.

- In setback the thermostat holds the air at its setpoint, so its mean power is what the air
  loses, P = H_out (T_a - T_out) + H_am (T_a - T_mass) (the two-node room): the heating's duty
  cycle says how cold the walls and floor are. The Recorder measures that duty over the setback
  before each warm-up, and the `need` model takes it as a feature.
- A drift is learned from the first hour with the heating off (what an early stop needs), and the
  planner stops a session early by the drift formula, except when the next session's warm-up
  would begin before this one ends.

Expected values are hand computations (worked in the comments) on the models' closed forms."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from agent.analytics.optimum_start import OptimumStart, Recorder
from agent.analytics.preheat import PreheatPlanner
from agent.analytics.service import STATE_FILE
from agent.common.state_store import StateStore
from agent.config.analytics import OptimumStartConfig
from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber

BASE = "roomagent/test-node"

HOUR = 3600.0
MINUTE = 60.0


def test_the_need_model_with_the_setback_duty_recovers_known_coefficients() -> None:
    # Warm-ups that took hours = g (0.1 + 0.05 g + 0.002 d + 0.5 u): the fit is exact on such
    # points. 3 K at d = 15 K after a setback that heated 20 % of the time:
    # 3 (0.1 + 0.15 + 0.03 + 0.1) = 1.14 h; after one that did not heat at all: 0.84 h.
    o = OptimumStart("z", OptimumStartConfig(model="need"))
    for g, d, u in ((1.0, 20.0, 0.1), (2.0, 18.0, 0.3), (3.0, 22.0, 0.0), (4.0, 20.0, 0.2),
                    (2.5, 16.0, 0.4), (1.5, 19.0, 0.05)):  # fmt: skip
        hours = g * (0.1 + 0.05 * g + 0.002 * d + 0.5 * u)
        t0 = 19.0 - g / 2  # centred on 19 °C: the mean difference is d
        assert o.learn_warmup(t0, t0 + g, 19.0 - d, hours, duty=u)
    assert o.need_hours(3.0, 21.0, 18.0, 4.5, duty=0.2) == pytest.approx(1.14, rel=1e-9)
    assert o.need_hours(3.0, 21.0, 18.0, 4.5, duty=0.0) == pytest.approx(0.84, rel=1e-9)
    d = o.plan(100_000.0, 21.0, 18.0, 4.5, duty=0.2)
    assert d.source == "learned" and d.lead_minutes == pytest.approx(1.14 * 60 * 1.05)
    # The duty is kept with what is learned, and comes back.
    again = OptimumStart("z", OptimumStartConfig(model="need"), saved=o.state())
    assert again.need_hours(3.0, 21.0, 18.0, 4.5, duty=0.2) == pytest.approx(1.14, rel=1e-9)


def test_without_a_duty_now_or_enough_warm_ups_with_one_the_duty_is_left_out() -> None:
    # hours = g (0.1 + 0.05 g + 0.002 d) exactly, four of five without a duty (states written
    # before it): the three-term fit, 0.84 h for 3 K at 15 K as worked above, whatever the duty.
    o = OptimumStart("z", OptimumStartConfig(model="need"))
    for i, (g, d) in enumerate(((1.0, 20.0), (2.0, 18.0), (3.0, 22.0), (4.0, 20.0), (2.5, 16.0))):
        t0 = 19.0 - g / 2
        hours = g * (0.1 + 0.05 * g + 0.002 * d)
        assert o.learn_warmup(t0, t0 + g, 19.0 - d, hours, duty=0.3 if i == 0 else None)
    assert o.need_hours(3.0, 21.0, 18.0, 4.5, duty=0.9) == pytest.approx(0.84, rel=1e-9)
    assert o.need_hours(3.0, 21.0, 18.0, 4.5) == pytest.approx(0.84, rel=1e-9)


def test_the_recorder_measures_the_setback_duty_and_gives_it_to_the_warm_up() -> None:
    o = OptimumStart("z", OptimumStartConfig())
    rec = Recorder(o)
    now = 0.0
    # Setback for 5 h, one look a minute, heating on one look in four.
    for i in range(300):
        if i == 30:  # half an hour watched: under the hour a duty needs
            assert rec.duty(now) is None
        rec.observe(now, 17.0, 0.0, "part" if i % 4 == 0 else "off")
        now += MINUTE
    # The last 4 h (DUTY_WINDOW) hold 240 looks, 60 of them on (i = 60, 64, ..., 296).
    assert rec.duty(now) == pytest.approx(0.25)
    for i in range(60):  # a warm-up of 4 K in an hour
        rec.observe(now, 17.0 + 4 * i / 60, 0.0, "full")
        now += MINUTE
    assert rec.observe(now, 21.0, 0.0, "part")  # the thermostat lets go: a lesson
    assert o.episodes[-1].duty == pytest.approx(0.25)
    assert o.episodes[-1].gained == pytest.approx(4.0)


def test_the_drift_is_learned_from_the_first_hour_off() -> None:
    # A heavy room's air after the heating stops: 10 K above outdoors relaxing with the air's
    # 0.5 h, 10 K with the walls' 50 h. After one hour it is 10 e^-2 + 10 e^-0.02 = 11.1554 K
    # above outdoors, so tau = 1 / ln(20 / 11.1554) = 1.7129 h; the whole night would say far
    # more (12 h: 1 / ... = 12 / ln(20 / 7.8663) = 12.86 h), and let a stopped session go cold.
    o = OptimumStart("z", OptimumStartConfig())
    rec = Recorder(o)
    for i in range(12 * 60 + 1):
        t = i / 60
        rec.observe(i * MINUTE, 10 * math.exp(-t / 0.5) + 10 * math.exp(-t / 50), 0.0, "off")
    assert o.tau_h == pytest.approx(1 / math.log(20 / (10 * math.exp(-2) + 10 * math.exp(-0.02))),
                                    rel=1e-6)  # fmt: skip
    assert o.tau_h == pytest.approx(1.7129, abs=1e-4)
    rec.observe(12 * 60 * MINUTE + MINUTE, 7.0, 0.0, "part")  # the run ends: no second lesson
    assert o._tau_weight == 1


def stopping_planner(tau_h: float) -> PreheatPlanner:
    learner = OptimumStart("z", OptimumStartConfig(safety=1.0, stop_band=0.5, early_stop=True))
    learner.tau_h = tau_h
    return PreheatPlanner(learner, early_stop=True)


def test_the_planner_stops_a_session_early_by_the_drift_formula() -> None:
    # 21 °C, 1 °C outdoors, tau 20 h, 0.5 K of band: 20 ln(20 / 19.5) h = 30.38 min before the
    # end; a 2-hour session from 100 000 s stops at its end minus that.
    planner = stopping_planner(20.0)
    start, end = 100_000.0, 100_000.0 + 2 * HOUR
    minutes = 20 * math.log(20 / 19.5) * 60
    stop_at = end - minutes * 60
    assert planner.look(stop_at - MINUTE, (start, end), None, 21.0, 21.0, 1.0).comfort
    look = planner.look(stop_at + 1, (start, end), None, 21.0, 21.0, 1.0)
    assert not look.comfort and look.decision is not None
    assert look.decision.action == "stop" and look.decision.start_at == pytest.approx(stop_at)
    assert look.decision.reason.startswith("stop ") and "0.5 K in 30 min" in look.decision.reason
    # Stopped once: it stays off to the end, whatever later looks say.
    assert not planner.look(end - MINUTE, (start, end), None, 21.0, 20.6, 1.0).comfort


def test_no_early_stop_when_the_next_session_needs_its_warm_up_before_this_one_ends() -> None:
    planner = stopping_planner(20.0)
    start, end = 100_000.0, 100_000.0 + 2 * HOUR
    # The fixed lead (120 min, nothing learned) for a session 30 min after this one: its
    # warm-up begins 90 min before this one ends, so this one runs to its end.
    look = planner.look(end - 10 * MINUTE, (start, end), end + 30 * MINUTE, 21.0, 20.0, 1.0)
    assert look.comfort and look.decision is None
    # A next session 3 h after the end leaves room to stop.
    late = planner.look(end - 10 * MINUTE, (start, end), end + 3 * HOUR, 21.0, 21.0, 1.0)
    assert not late.comfort and late.decision is not None and late.decision.action == "stop"


def test_without_early_stop_the_session_runs_to_its_end() -> None:
    learner = OptimumStart("z", OptimumStartConfig(safety=1.0))
    learner.tau_h = 20.0
    planner = PreheatPlanner(learner)
    assert planner.look(107_000.0, (100_000.0, 107_200.0), None, 21.0, 21.0, 1.0).comfort


def test_a_stop_whose_room_leaves_the_band_is_taken_back_until_the_end() -> None:
    planner = stopping_planner(20.0)
    start, end = 100_000.0, 100_000.0 + 2 * HOUR
    look = planner.look(end - 30 * MINUTE, (start, end), None, 21.0, 21.0, 1.0)  # 30.38 min
    assert not look.comfort and look.decision is not None and look.decision.action == "stop"
    # 20.5 °C is the band's edge (21 - 0.5): still stopped. 20.4 °C is out of it.
    assert not planner.look(end - 25 * MINUTE, (start, end), None, 21.0, 20.5, 1.0).comfort
    back = planner.look(end - 20 * MINUTE, (start, end), None, 21.0, 20.4, 1.0)
    assert back.comfort and back.decision is not None and back.decision.action == "resume"
    assert "20.4 °C is out of the 0.5 K band" in back.decision.reason
    # Comfort to the end, even once the room is back at its setpoint: no second stop.
    assert planner.look(end - MINUTE, (start, end), None, 21.0, 21.0, 1.0).comfort


# In the agent -------------------------------------------------------------------------------


def test_early_stop_is_read_from_the_config_and_refused_when_not_a_boolean(
    tmp_path: Path,
) -> None:
    from tests.analytics_room import errors_of, load

    assert load(tmp_path, "[room.optimum_start]\n").room.optimum_start.early_stop is False
    cfg = load(tmp_path, "[room.optimum_start]\nearly_stop = true\n")
    assert cfg.room.optimum_start.early_stop is True
    text = errors_of(tmp_path, "[room.optimum_start]\nearly_stop = 1\n")
    assert "room.optimum_start.early_stop:" in text and "true or false" in text


@pytest.mark.parametrize("change", ["control", "room"])
def test_what_was_learned_survives_a_config_pushed_over_mqtt(
    broker: Broker, tmp_path: Path, agent_process: Callable[[str], AgentProcess], change: str
) -> None:
    """The node starts with four warm-ups learned (3 K/h) in its state directory and a session
    20 minutes ahead; a config pushed on cmd/config raises the comfort setpoint to 26 °C
    ("control"), or, the setpoint being 26 °C from the start, changes only [room.optimum_start]
    ("room"). The agent rebuilt after the push plans that session from what it learned: an
    optimum_start event "learned" for 26 °C (with the state lost it would be "fixed": 0 of 3
    learned; with the push not applied there would be no new decision)."""
    from tests.analytics_room import ZONE, _climate, analytics, warm_ups
    from tests.central import Central

    state = tmp_path / "state"
    state.mkdir()
    first = analytics(state)
    warm_ups(first, 4)
    learned = len(first.zones["room"].learner.episodes)
    first.close()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    session = (f'[[sessions]]\nstart = "{(now + timedelta(minutes=20)).isoformat()}"\n'
               f'end = "{(now + timedelta(minutes=80)).isoformat()}"\n')  # fmt: skip
    text = node_config(broker.port, state, devices=_climate() + ZONE + "[room.optimum_start]\n"
                       + session)  # fmt: skip
    warm = text.replace("comfort = 21.0", "comfort = 26.0").replace("boost = 22.0", "boost = 27.0")
    if change == "room":
        text = warm
    sub = Subscriber(broker.port, f"{BASE}/events")
    agent = agent_process(text)
    agent.start()
    central = Central(broker.port)
    try:
        new = warm
        if change == "room":
            new = text.replace(
                "[room.optimum_start]\n", "[room.optimum_start]\nmax_lead_minutes = 300\n"
            )
        pushed = 0  # the events before the push are not its effect

        def starts(ms: list) -> list[dict]:
            return [e for e in (json.loads(m.payload) for m in ms[pushed:])
                    if e.get("kind") == "optimum_start" and e.get("subject") == "room"]  # fmt: skip

        def for_the_new_setpoint(ms: list) -> bool:
            # A start toward 26 °C: more than 4 K to gain from a room near 21 °C or below.
            return any(float(e["reason"].split(": ", 1)[1].split(" K")[0]) > 4
                       for e in starts(ms) if " K to gain" in e["reason"])  # fmt: skip

        if change == "room":  # the start toward 26 °C before the push
            assert sub.wait_for(for_the_new_setpoint, timeout=60), agent.output()[-3000:]
        reply = None
        deadline = time.monotonic() + 60
        while reply is None and time.monotonic() < deadline:  # until the agent answers
            pushed = len(sub.messages)
            reply = central.send("config", json.dumps({"id": "p1", "config": new}), timeout=2)
        assert reply is not None and reply["ok"], (reply, agent.output()[-3000:])
        assert reply["result"]["changed"] == [change], reply

        assert sub.wait_for(for_the_new_setpoint, timeout=60), (starts(sub.messages),
                                                                agent.output()[-3000:])  # fmt: skip
        event = next(e for e in reversed(starts(sub.messages)) if " K to gain" in e["reason"])
        assert event["state"] == "learned", event
        saved = StateStore(state / STATE_FILE).get("optimum_start.room.heat")
        assert len(saved["episodes"]) >= learned
    finally:
        central.close()
        sub.close()
        assert agent.terminate() == 0
