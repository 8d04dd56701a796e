"""docs/security.md's broker setup, run by a real mosquitto: each room stays in its own subtree.

The ACL file and the mosquitto.conf lines are read from the doc, between its markers, so what
installers are told and what is proven here are one text. Every refusal is paired with the
same kind of message going through where it is allowed: a broker that refused everything fails.

A message that must not arrive is shown absent with a barrier, not a sleep: mosquitto routes a
message to its subscribers before it acknowledges it to the publisher, and delivers to each
subscriber in order. So once the refused publish is acknowledged and a later, allowed message
has arrived, the refused one would have arrived before it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.acl_broker import password
from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker

NOT_AUTHORIZED = 0x87  # MQTT 5 reason code, spec section 2.4
TIMEOUT = 10.0


class Peer:
    """A hand-made MQTT 5 client logged in as one user: what it receives, and the broker's
    reason codes for what it sends."""

    def __init__(self, port: int, user: str, client_id: str = "") -> None:
        self.cond = threading.Condition()
        self.messages: list[tuple[str, bytes]] = []
        self.acks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.connack: Optional[ReasonCode] = None
        self.disconnects = 0
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"{user}-peer",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(user, password(user))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._wait(lambda: self.connack is not None), f"{user}: no CONNACK"
        assert self.connack is not None and not self.connack.is_failure, self.connack

    def _record(self, change: Callable[[], None]) -> None:
        with self.cond:
            change()
            self.cond.notify_all()

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self._record(lambda: setattr(self, "connack", rc))

    def _on_disconnect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self._record(lambda: setattr(self, "disconnects", self.disconnects + 1))

    def _on_publish(self, c: Any, u: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        self._record(lambda: self.acks.__setitem__(mid, rc))

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[ReasonCode], props: Any) -> None:
        self._record(lambda: self.subacks.__setitem__(mid, rcs))

    def _on_message(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        self._record(lambda: self.messages.append((msg.topic, bytes(msg.payload))))

    def _wait(self, predicate: Callable[[], bool]) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, TIMEOUT)

    def publish(self, topic: str, payload: str, retain: bool = False) -> ReasonCode:
        """QoS 1; returns the reason code of the broker's PUBACK."""
        mid = self.client.publish(topic, payload, qos=1, retain=retain).mid
        assert self._wait(lambda: mid in self.acks), f"no PUBACK for {topic}"
        return self.acks[mid]

    def subscribe(self, topic: str) -> None:
        _, mid = self.client.subscribe(topic, qos=1)
        assert self._wait(lambda: mid in self.subacks), f"no SUBACK for {topic}"

    def wait_for(self, topic: str, count: int = 1) -> bool:
        return self._wait(lambda: len(self.on(topic)) >= count)

    def on(self, topic: str) -> list[bytes]:
        with self.cond:
            return [payload for t, payload in self.messages if t == topic]

    def topics(self) -> list[str]:
        with self.cond:
            return [t for t, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers(secured: Broker) -> Iterator[Callable[..., Peer]]:
    made: list[Peer] = []

    def make(user: str, client_id: str = "") -> Peer:
        made.append(Peer(secured.port, user, client_id))
        return made[-1]

    yield make
    for p in made:
        p.close()


def refused(rc: ReasonCode) -> bool:
    return rc.value == NOT_AUTHORIZED


def test_the_agent_logged_in_as_its_room_reaches_central(
    secured: Broker, peers: Callable[..., Peer], tmp_path: Path,
    agent_process: Callable[[str], AgentProcess],
) -> None:  # fmt: skip
    central = peers("central")
    central.subscribe("roomagent/room-a/#")
    central.subscribe("homeassistant/device/#")
    secret = tmp_path / "mqtt-password"
    secret.write_text(password("room-a") + "\n")
    secret.chmod(0o600)
    login = f'username = "room-a"\npassword_file = "{secret}"\n'
    text = node_config(secured.port, tmp_path / "state", broker_extra=login)
    assert text.count('id = "test-node"') == 1
    agent = agent_process(text.replace('id = "test-node"', 'id = "room-a"'))
    agent.start()

    assert central.wait_for("roomagent/room-a/telemetry/climate"), agent.output()
    assert central.on("roomagent/room-a/status")[0] == b"online"
    discovery = "homeassistant/device/room-a/config"
    assert central.wait_for(discovery), agent.output()
    # Home Assistant's birth message reaches the node (it may read homeassistant/status), which
    # announces itself again.
    assert not central.publish("homeassistant/status", "online").is_failure
    assert central.wait_for(discovery, count=2), agent.output()

    assert agent.terminate() == 0
    assert "refused" not in agent.output()
    assert central.wait_for("roomagent/room-a/status", count=2)
    assert central.on("roomagent/room-a/status")[-1] == b"offline"


def test_a_node_cannot_publish_into_another_room(peers: Callable[..., Peer]) -> None:
    central = peers("central")
    central.subscribe("roomagent/#")
    room_a, room_b = peers("room-a"), peers("room-b")
    assert not room_b.publish("roomagent/room-b/status", "online", retain=True).is_failure

    assert not room_a.publish("roomagent/room-a/telemetry/climate", "own").is_failure
    for topic in ("roomagent/room-b/telemetry/climate", "roomagent/room-b/cmd/relay/heater"):
        assert refused(room_a.publish(topic, "forged")), topic
    assert refused(room_a.publish("roomagent/room-b/status", "offline", retain=True))

    assert not room_b.publish("roomagent/room-b/telemetry/barrier", "").is_failure
    assert central.wait_for("roomagent/room-b/telemetry/barrier")
    assert central.topics() == [
        "roomagent/room-b/status",
        "roomagent/room-a/telemetry/climate",
        "roomagent/room-b/telemetry/barrier",
    ]
    # Nor was room-b's retained status replaced: a late reader gets room-b's own.
    installer = peers("installer")
    installer.subscribe("roomagent/room-b/status")
    assert installer.wait_for("roomagent/room-b/status")
    assert installer.on("roomagent/room-b/status") == [b"online"]


def test_a_node_cannot_read_another_room(peers: Callable[..., Peer]) -> None:
    central, room_a, room_b = peers("central"), peers("room-a"), peers("room-b")
    assert not room_b.publish("roomagent/room-b/status", "online", retain=True).is_failure
    room_b.subscribe("roomagent/room-b/cmd/#")
    # mosquitto 2.0 grants these subscriptions and filters every message against the ACL;
    # only what is delivered matters, so the SUBACK's code is not asserted.
    for topic in ("roomagent/room-b/cmd/#", "roomagent/+/cmd/#", "roomagent/#", "#"):
        room_a.subscribe(topic)

    assert not central.publish("roomagent/room-b/cmd/ping", "for room-b").is_failure
    assert room_b.wait_for("roomagent/room-b/cmd/ping")  # the command really went out
    assert not central.publish("roomagent/room-a/cmd/barrier", "").is_failure
    assert room_a.wait_for("roomagent/room-a/cmd/barrier")
    assert set(room_a.topics()) == {"roomagent/room-a/cmd/barrier"}


def test_central_commands_a_room_but_cannot_speak_for_it(peers: Callable[..., Peer]) -> None:
    central, room_a = peers("central"), peers("room-a")
    room_a.subscribe("roomagent/room-a/#")

    assert not central.publish("roomagent/room-a/cmd/ping", "ping").is_failure
    assert room_a.wait_for("roomagent/room-a/cmd/ping")
    assert refused(central.publish("roomagent/room-a/telemetry/x", "forged"))
    assert refused(central.publish("roomagent/room-a/state/agent", "forged", retain=True))
    assert refused(central.publish("roomagent/room-a/status", "offline", retain=True))
    assert refused(central.publish("homeassistant/device/room-a/config", "forged"))

    assert not central.publish("roomagent/room-a/cmd/barrier", "").is_failure
    assert room_a.wait_for("roomagent/room-a/cmd/barrier")
    assert room_a.topics() == ["roomagent/room-a/cmd/ping", "roomagent/room-a/cmd/barrier"]


def test_home_assistant_topics(peers: Callable[..., Peer]) -> None:
    central, room_a, room_b = peers("central"), peers("room-a"), peers("room-b")
    central.subscribe("homeassistant/#")
    room_a.subscribe("homeassistant/status")

    assert not room_a.publish("homeassistant/device/room-a/config", "a").is_failure
    assert refused(room_a.publish("homeassistant/device/room-b/config", "forged"))
    # A node posing as Home Assistant would make every node announce itself again.
    assert refused(room_a.publish("homeassistant/status", "forged"))
    assert not room_b.publish("homeassistant/device/room-b/config", "b").is_failure
    assert central.wait_for("homeassistant/device/room-b/config")
    assert central.messages == [
        ("homeassistant/device/room-a/config", b"a"),
        ("homeassistant/device/room-b/config", b"b"),
    ]

    assert not central.publish("homeassistant/status", "online").is_failure
    assert room_a.wait_for("homeassistant/status")
    assert room_a.messages == [("homeassistant/status", b"online")]


def test_a_node_cannot_push_another_off_the_broker(peers: Callable[..., Peer]) -> None:
    room_b = peers("room-b", client_id="roomagent-room-b")
    room_a = peers("room-a", client_id="roomagent-room-b")  # room-b's client id
    # A round trip on room-b's connection after room-a was let in: had the broker closed it,
    # the disconnect would be counted before this PUBACK (paho resends after reconnecting).
    assert not room_b.publish("roomagent/room-b/state/agent", "still here").is_failure
    assert not room_a.publish("roomagent/room-a/state/agent", "here too").is_failure
    assert (room_b.disconnects, room_a.disconnects) == (0, 0)
