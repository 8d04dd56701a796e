"""Commands: every one answered, nothing moved by a bad, late, duplicate or controlled one.
What a command does is tested against the agent in this process (tests/inprocess.py); what
the broker adds (the response topic and correlation, the plain answer topic, retained
commands never obeyed, the relay's retained state) once, end to end, through a real mosquitto
and the agent as a subprocess. The fuzz is in test_command_fuzz.py."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from tests.central import BASE, CONTROL, Central, CentralRoom
from tests.conftest import AgentProcess, node_config
from tests.inprocess import InProcessAgent
from tests.mqtt_fixtures import Broker
from tests.waiting import wait_until


@pytest.fixture
def node(tmp_path: Path) -> Iterator[InProcessAgent]:
    n = InProcessAgent(tmp_path, CONTROL)
    yield n
    n.close()


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def test_relay_on_off_toggle_and_the_interlock(node: InProcessAgent) -> None:
    assert node.command("relay/up", "ON").ok
    assert node.relay_on("up") is True
    reply = node.command("relay/down", '{"command": "set", "on": true, "id": "d1"}')
    assert reply.ok and reply.id == "d1", reply
    assert node.relay_on("down") is True
    assert node.relay_on("up") is False  # never both: the interlock switched it off first
    assert node.command("relay/down", "TOGGLE").ok
    assert node.relay_on("down") is False


def test_a_duplicate_id_is_not_executed_twice(node: InProcessAgent) -> None:
    first = node.command("relay/up", '{"command": "toggle", "id": "same"}')
    second = node.command("relay/up", '{"command": "toggle", "id": "same"}')
    assert first.ok and first == second  # the same answer, given again
    assert node.relay_on("up") is True  # toggled once, not back off


def test_late_and_controlled_commands_move_nothing(node: InProcessAgent) -> None:
    past = iso(datetime.now(timezone.utc) - timedelta(hours=3))
    late = node.command("relay/up", json.dumps({"command": "on", "expires": past}))
    assert late.code == "expired"
    stale = node.command("relay/up", json.dumps({"command": "on", "ttl": 10, "ts": past}))
    assert stale.code == "expired"
    owned = node.command("relay/heater", "ON")
    assert owned.code == "controlled" and "zone 'chamber'" in owned.reason
    assert node.relay_on("up") is False
    fresh = iso(datetime.now(timezone.utc) + timedelta(minutes=1))
    assert node.command("relay/up", json.dumps({"command": "on", "expires": fresh})).ok
    assert node.relay_on("up") is True


@pytest.mark.parametrize(
    "suffix,payload,code",
    [
        ("relay/up", b"x" * 5000, "too_large"),
        ("relay/up", b"\xff\xfe\x00", "bad_encoding"),
        ("relay/up", b'{"command": "on"', "bad_json"),
        ("relay/up", b"[1, 2]", "bad_json"),
        ("relay/nope", b"ON", "unknown_target"),
        ("relay/up", b"BLINK", "unknown_command"),
        ("relay/up", b'{"command": "set", "on": "yes"}', "bad_argument"),
        ("relay/up", b'{"command": "pulse", "seconds": 99999}', "bad_argument"),
        ("zone/chamber/setpoint", b"85", "bad_argument"),
        ("zone/chamber/preset", b"sauna", "bad_argument"),
        ("scene/party", b"apply", "unknown_target"),
        ("nothing/here", b"ON", "unknown_target"),
    ],
)
def test_bad_commands_get_an_error_and_change_nothing(
    node: InProcessAgent, suffix: str, payload: bytes, code: str
) -> None:
    reply = node.command(suffix, payload)
    assert reply.ok is False and reply.code == code, reply
    assert node.relay_on("up") is False and node.relay_on("down") is False


def test_home_assistant_style_setpoint(node: InProcessAgent) -> None:
    reply = node.command("zone/chamber/setpoint", "22.5")
    assert reply.ok and reply.result["setpoint"] == 22.5


@pytest.fixture
def central(
    tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
) -> Iterator[Central]:
    text = node_config(broker.port, tmp_path / "state") + textwrap.dedent(CONTROL)
    room = CentralRoom(broker, agent_process, text)
    yield room.central
    room.close()


def test_end_to_end_through_the_broker(central: Central) -> None:
    """The smoke test: answers on the sender's response topic with its correlation data, or on
    cmd/response without one; the relay's state retained on its topic; a retained command is
    never obeyed, not now and not at every reconnect."""
    reply = central.send("ping", '{"id": "p1"}')
    assert reply is not None and reply["id"] == "p1" and reply["ok"] and reply["code"] == "ok"
    assert reply["result"] == {"pong": True} and reply["ts"].endswith("Z")
    assert central.send("relay/up", "ON", retain=True, timeout=1.5) is None
    central.client.publish(f"{BASE}/cmd/relay/down", '{"command": "on", "id": "plain"}', qos=1)
    assert wait_until(lambda: [a for a in central.plain if a["id"] == "plain"])
    assert [a["ok"] for a in central.plain if a["id"] == "plain"] == [True]
    assert wait_until(lambda: central.state("down") is True)
    assert central.state("up") is not True  # retained off from the start, never on
