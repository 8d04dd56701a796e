"""The central side of the MQTT contract for tests: an MQTT 5 client that sends commands with a
response topic and correlation data and records the answers and the relay states, as a
building's central system would (docs/mqtt.md). Used by every test that drives a real agent
through a real broker."""

from __future__ import annotations

import itertools
import json
import socket
import threading
from typing import Any, Callable, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import AgentProcess
from tests.mqtt_fixtures import Broker, Subscriber
from tests.waiting import wait_until

BASE = "roomagent/test-node"
# An interlocked pair (a blind's up and down) and a heater run by a zone on the simulated
# climate sensor: the room most command tests use.
BLIND = """
[[relays]]
name = "up"
pin = 17
interlock = "blind"
[[relays]]
name = "down"
pin = 27
interlock = "blind"
"""
HEATED_ZONE = """
[[relays]]
name = "heater"
pin = 22
kind = "heat"
[[zones]]
name = "chamber"
sensor = "climate"
heat = ["heater"]
comfort = 21.0
eco = 17.0
boost = 23.0
"""
CONTROL = BLIND + HEATED_ZONE


class Central:
    """An MQTT 5 client as a central system: commands with a response topic and correlation."""

    def __init__(self, port: int) -> None:
        self.cond = threading.Condition()
        self.responses: dict[bytes, dict[str, Any]] = {}
        self.plain: list[dict[str, Any]] = []
        self.relays: list[tuple[str, bool]] = []
        self.counter = itertools.count(1)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=f"central-{port}")  # fmt: skip
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_connect = self._on_connect
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        sock = client.socket()
        if isinstance(sock, socket.socket):  # no Nagle: each round trip is one small command
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe(
            [("central/replies", 1), (f"{BASE}/cmd/response", 1), (f"{BASE}/relay/+", 1)]
        )

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            if msg.topic == "central/replies":
                self.responses[msg.properties.CorrelationData] = json.loads(msg.payload)
            elif msg.topic.endswith("/cmd/response"):
                self.plain.append(json.loads(msg.payload))
            else:
                self.relays.append((msg.topic.rsplit("/", 1)[1], json.loads(msg.payload)["on"]))
            self.cond.notify_all()

    def send(self, suffix: str, payload: bytes | str, retain: bool = False,
             timeout: float = 5.0) -> Optional[dict[str, Any]]:  # fmt: skip
        key = str(next(self.counter)).encode()
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = "central/replies"
        props.CorrelationData = key
        self.client.publish(f"{BASE}/cmd/{suffix}", payload, qos=1, retain=retain,
                            properties=props)  # fmt: skip
        with self.cond:
            self.cond.wait_for(lambda: key in self.responses, timeout)
            return self.responses.get(key)

    def state(self, relay: str) -> Optional[bool]:
        with self.cond:
            states = [on for name, on in self.relays if name == relay]
        return states[-1] if states else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class CentralRoom:
    """One agent as a subprocess with the config `text`, a central client and a subscriber to
    all it says; ready once the agent answers a ping."""

    def __init__(self, broker: Broker, make: Callable[[str], AgentProcess], text: str) -> None:
        self.text = text
        self.agent = make(text)
        self.sub = Subscriber(broker.port, f"{BASE}/#")
        self.agent.start()
        self.central = Central(broker.port)
        up = wait_until(lambda: self.central.send("ping", "{}", timeout=0.5) is not None, 20)
        assert up, self.agent.output()

    def close(self) -> None:
        self.central.close()
        self.sub.close()
        assert self.agent.terminate() == 0
