"""Thousands of random commands, and damaged configs pushed by cmd/config, against the whole
agent in this process (tests/inprocess.py): its real command processor, room control, relay
bank on gpiozero MockFactory pins, SQLite buffer and control state in tmp_path.

What must hold, whatever arrives:
- every command gets an answer with a code from docs/mqtt.md, and none is an internal error
  (an exception our code let escape into the processor's last-resort handler);
- a refused command changes nothing: no relay pin written, no control's state moved, no
  config or device interval changed;
- the relays keep their safety rules on the pins themselves: the interlocked pair never on
  together, interlock_dead_time between them, min_on and min_off (docs/config.md);
- the agent keeps running and answers a ping afterwards.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.mqtt.command_args import ERRORS
from tests.central import HEATED_ZONE
from tests.inprocess import InProcessAgent, dead_times, overlaps, shortest, timeline
from tests.soak import SOAK
from tests.waiting import wait_until

MIN_ON, MIN_OFF, DEAD = 0.4, 0.3, 0.2  # s: short, so that a fuzz of seconds meets them often
# The relay bank reads its clock a moment before it writes the pin; under load the two pins'
# writes can be that much further apart or closer than the bank's decision.
SLACK = 0.05  # s
DEVICES = """
[[devices]]
name = "climate"
driver = "bme280"
interval = 1
[[devices]]
name = "co2"
driver = "scd4x"
interval = 5
"""
# The interlocked pair of tests/central.py, with minimum times short enough that a fuzz of
# seconds meets them often.
BLIND = "".join(
    f'[[relays]]\nname = "{name}"\npin = {pin}\ninterlock = "blind"\n'
    f"interlock_dead_time = {DEAD}\nmin_on = {MIN_ON}\nmin_off = {MIN_OFF}\n"
    for name, pin in (("up", 17), ("down", 27))
)
# A light group, a ventilation and a scene, each with its relay.
AUTOMATION = """
[[relays]]
name = "lamp"
pin = 23
kind = "light"
[[relays]]
name = "fan"
pin = 24
kind = "ventilation"
[[inputs]]
name = "pir"
pin = 5
kind = "motion"
[[inputs]]
name = "wall"
pin = 6
kind = "button"
[[lights]]
name = "chamber"
relays = ["lamp"]
occupancy = ["pir"]
switch = "wall"
[[ventilation]]
name = "chamber"
relays = "fan"
co2_sensor = "co2"
co2_on = 1000
co2_off = 800
[[scenes]]
name = "meeting"
minutes = 60
[scenes.targets]
"lights:chamber" = "on"
"zone:chamber" = "comfort"
"ventilation:chamber" = "boost"
"""
CONTROL = BLIND + HEATED_ZONE + AUTOMATION
INTERLOCKED = {"up": 17, "down": 27}  # active low, the default

# The broker fuzz of test_commands.py (until this module) sent these 11 topics:
BROKER_FUZZ_TOPICS = ["relay/up", "relay/down", "relay/heater", "zone/chamber/setpoint",
                      "zone/chamber/preset", "zone/chamber/mode", "ping", "stats", "scene/x",
                      "x/y/z", "config"]  # fmt: skip
# ... and this one every command family the processor knows, with good and bad names and
# sub-topics (docs/mqtt.md "Commands"):
TOPICS = [*BROKER_FUZZ_TOPICS, "relay/nope", "relay", "relay/up/x", "zone/chamber",
          "zone/chamber/x", "zone/nope/setpoint", "scene/meeting", "scene", "lights/chamber",
          "lights/chamber/effect", "lights/chamber/x", "lights/nope", "ventilation/chamber",
          "ventilation/chamber/stage", "ventilation/chamber/preset", "ventilation/chamber/x",
          "ventilation/nope", "device/climate/interval", "device/co2/interval",
          "device/nope/interval", "device/climate", "state/relay/up", "state/zone/chamber",
          "state/energy", "state/nope", "state/device/climate", "reannounce", "ping/x",
          "sessions", "", "relay//"]  # fmt: skip
VERBS = ["on", "off", "toggle", "set", "pulse", "get", "apply", "auto", "boost", "manual", "stage",
         "none", "comfort", "eco", "frost", "heat", "cool", "heat_cool", "fetch"]  # fmt: skip
PAYLOADS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=80).map(str.encode),
    st.sampled_from([b"ON", b"OFF", b"TOGGLE", b"AUTO", b"BOOST", b"22.5", b"2", b"eco",
                     b"off", b"heat", b"nan", b"inf", b"-1", b"1e309", b"", b"{}"]),
    st.dictionaries(
        st.sampled_from(["id", "command", "on", "seconds", "value", "minutes", "expires", "ttl",
                         "ts", "preset", "mode", "config", "stage", "sessions"]),
        st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(),
                  st.text(max_size=30), st.sampled_from(VERBS),
                  st.sampled_from(["2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "yesterday"]),
                  st.lists(st.integers(), max_size=3)),
        max_size=6,
    ).map(lambda d: json.dumps(d).encode()),
)  # fmt: skip


@pytest.fixture
def node(tmp_path: Path) -> Iterator[InProcessAgent]:
    n = InProcessAgent(tmp_path, CONTROL, DEVICES)
    yield n
    n.close()


def plain(obj: Any) -> str:
    """An object's own state, as text: its attributes that are data, not collaborators."""
    kept = (type(None), bool, int, float, str, tuple, list, dict)
    fields = {
        k: v
        for k, v in vars(obj).items()
        if isinstance(v, kept) or hasattr(v, "__dataclass_fields__")
    }
    return repr(sorted(fields.items()))


def snapshot(n: InProcessAgent) -> dict[str, Any]:
    """Everything a command may move; taken on the agent's loop, so nothing moves meanwhile."""
    agent, room = n.agent, n.agent.room
    assert room is not None
    return {
        "relays": room.relays.states(),
        "writes": {
            pin: len(n.pins.pin(pin).__dict__.get("writes", [])) for pin in (17, 22, 23, 24, 27)
        },
        "zones": {name: plain(z) for name, z in room.zones.items()},
        "lights": {name: plain(c) for name, c in room.lights.items()},
        "ventilation": {name: plain(c) for name, c in room.ventilation.items()},
        "intervals": {r.config.name: r.config.interval for r in agent.runners},
        "config": agent.config,
    }


def answer(
    n: InProcessAgent, suffix: str, payload: bytes
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    def run() -> tuple[Any, dict[str, Any], dict[str, Any]]:
        before = snapshot(n)
        response = n.agent.commands.process(suffix.split("/"), payload)
        return response, before, snapshot(n)

    return n.call(run)


def settle(n: InProcessAgent) -> None:
    """Both interlocked relays commanded off, and waited for: an off deferred by min_on happens
    on a later round of the control loop, and is checked with the rest."""
    for name in INTERLOCKED:
        assert n.command(f"relay/{name}", "OFF").ok
    assert wait_until(lambda: not any(n.relay_on(name) for name in INTERLOCKED), 10)


def check_relay_rules(n: InProcessAgent) -> None:
    up, down = (timeline(n.pins, pin, active_high=False) for pin in INTERLOCKED.values())
    assert overlaps(up, down) == [], "interlock broken: both on together"
    assert min(dead_times(up, down), default=math.inf) >= DEAD - SLACK
    for name, changes in zip(INTERLOCKED, (up, down)):
        assert shortest(changes, on=True) >= MIN_ON - SLACK, f"{name}: min_on broken"
        assert shortest(changes, on=False) >= MIN_OFF - SLACK, f"{name}: min_off broken"


def test_fuzz_thousands_of_random_commands(node: InProcessAgent) -> None:
    codes: Counter[str] = Counter()
    started = time.monotonic()

    @settings(max_examples=int(3000 * SOAK), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(TOPICS), PAYLOADS)
    def one(suffix: str, payload: bytes) -> None:
        response, before, after = answer(node, suffix, payload)
        assert isinstance(response.ok, bool) and (response.code == "ok") == response.ok
        assert response.code == "ok" or response.code in ERRORS, response
        assert not response.reason.startswith("internal error"), (suffix, payload, response)
        if not response.ok:
            assert after == before, (suffix, payload, response)
        codes[response.code] += 1

    one()
    print(f"\nin-process fuzz: {sum(codes.values())} commands on {len(TOPICS)} topics in "
          f"{time.monotonic() - started:.1f} s: {dict(codes)}")  # fmt: skip
    settle(node)
    check_relay_rules(node)
    assert node.command("ping", "{}").ok  # still alive
    # The fuzz reached every kind of answer a command can get here, so it went past parsing.
    assert {"ok", "bad_json", "bad_argument", "unknown_target", "unknown_command"} <= set(codes)
    assert len(set(BROKER_FUZZ_TOPICS) - set(TOPICS)) == 0


def test_random_damage_to_a_pushed_config_never_stops_the_node_or_breaks_an_interlock(
    node: InProcessAgent,
) -> None:
    """Lines of a valid config dropped, duplicated or garbled at random, with one of an
    interlocked pair switched on before each: each push is answered (applied if still valid,
    else refused with a reason that names the problem), a refused one changes nothing, the
    pair is never on together, and the node runs on."""
    lines = node.text.splitlines()
    answers: Counter[str] = Counter()

    @settings(max_examples=int(150 * SOAK), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.lists(st.tuples(st.integers(0, len(lines) - 1),
                              st.sampled_from(["drop", "twice", "garble"]),
                              st.text(max_size=12)), max_size=3),
           st.sampled_from(list(INTERLOCKED)))  # fmt: skip
    def push(damage: list[tuple[int, str, str]], relay: str) -> None:
        node.command(f"relay/{relay}", "ON")  # the next config must not break what is on
        text = list(lines)
        for index, how, noise in damage:
            index = min(index, len(text) - 1)
            if "interlock" in text[index] or "min_o" in text[index]:
                continue  # a config without the rule may do what the rule forbids: not a fault
            if how == "drop":
                del text[index]
            elif how == "twice":
                text.insert(index, text[index])
            else:
                text[index] = text[index][: len(text[index]) // 2] + noise
        body = json.dumps({"id": f"d{sum(answers.values())}", "config": "\n".join(text)})
        response, before, after = answer(node, "config", body.encode())
        assert response.code in ("ok", "invalid_config"), response
        if not response.ok:
            assert "cmd/config" in response.reason, response  # names where the text came from
            assert after == before, response
        answers[response.code] += 1

    push()
    restored = node.command("config", json.dumps({"id": "restore", "config": node.text}))
    assert restored.ok, restored
    settle(node)
    check_relay_rules(node)
    assert node.command("ping", "{}").ok
    print(f"\ndamaged configs: {dict(answers)}")
