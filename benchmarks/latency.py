"""Command latency: a central client's relay command to the relay's pin changing, and to the answer.

The agent runs the profile on simulated hardware in this process (benchmarks/inproc.py), with
one more relay that no control runs, so that commands switch it directly. A central client
publishes ON and OFF in turn (QoS 1, with an id), one at a time. The pin is gpiozero's MockPin:
its state history is cleared just before each publish, so the time it records for the change is
the time from the publish to the pin moving, on gpiozero's own clock. The round trip ends when
the command's answer reaches the central client (MQTT 5 response topic and correlation data on
mosquitto; <base>/cmd/response on a 3.1.1 broker).

The baseline in the same run is the least a Python relay controller can do: a bare paho client
that, in its message callback, switches a gpiozero OutputDevice on a MockPin and publishes the
answer. All clients share this process and its interpreter lock, which makes every figure a
little worse than separate machines would see.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import paho.mqtt.client as mqtt
from gpiozero import OutputDevice
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks.harness import (
    Benchmark,
    Params,
    Result,
    figure,
    load_toml,
    node_config,
    percentile,
    profile_path,
    start_broker,
    target,
)
from benchmarks.inproc import InProcessAgent

TARGET_P99_MS = 20.0
ANSWER_TIMEOUT = 45.0  # s; past NATS's 30 s redelivery of an unacknowledged message
RELAY = "bench-relay"
CANDIDATE_PINS = (24, 25, 26, 16, 20, 21, 12, 13, 6, 19)


def _client(port: int, protocol: str, name: str) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bench-{name}-{time.monotonic_ns()}",
        protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
    )
    client.connect("127.0.0.1", port)
    sock = client.socket()
    if isinstance(sock, socket.socket):  # as the agent does; paho leaves Nagle on
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def _subscribe(client: mqtt.Client, topic: str) -> None:
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.subscribe(topic, qos=1)
    client.loop_start()
    if not subscribed.wait(30):
        raise RuntimeError(f"could not subscribe to {topic}")


class Central:
    """The central side: publishes commands and timestamps their answers as they arrive."""

    def __init__(self, port: int, protocol: str, base: str) -> None:
        self.v5 = protocol == "5"
        self.base = base
        self.answer_topic = "bench/central/answers" if self.v5 else f"{base}/cmd/response"
        self.answers: dict[str, float] = {}
        self.misrouted = 0  # MQTT 5 answers that came on cmd/response instead of the answer topic
        self.cond = threading.Condition()
        self.client = _client(port, protocol, "central")
        self.client.on_message = self._on_message
        _subscribe(self.client, self.answer_topic)
        if self.v5:
            _subscribe(self.client, f"{base}/cmd/response")

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        try:
            answer_id = json.loads(message.payload).get("id")
        except (ValueError, AttributeError):
            answer_id = None  # not an answer: never waited for
        with self.cond:
            if self.v5 and message.topic != self.answer_topic:
                self.misrouted += 1
            self.answers[answer_id] = now
            self.cond.notify_all()

    def command(self, path: str, body: dict[str, Any]) -> None:
        props = None
        if self.v5:
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = self.answer_topic
            props.CorrelationData = body["id"].encode()
        self.client.publish(f"{self.base}/cmd/{path}", json.dumps(body), qos=1, properties=props)

    def wait_answer(self, command_id: str, timeout: float) -> Optional[float]:
        """When the answer arrived, or None if it did not within timeout."""
        with self.cond:
            if not self.cond.wait_for(lambda: command_id in self.answers, timeout):
                return None
            return self.answers[command_id]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class BareResponder:
    """The baseline: a bare paho client switching a gpiozero relay and answering."""

    def __init__(self, port: int, protocol: str, base: str, pin: int) -> None:
        self.base = base
        self.relay = OutputDevice(pin, active_high=False, pin_factory=MockFactory())
        self.client = _client(port, protocol, "bare-responder")
        self.client.on_message = self._on_message
        _subscribe(self.client, f"{base}/cmd/#")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/cmd/response"):
            return
        body = json.loads(message.payload)
        if body.get("on"):
            self.relay.on()
        else:
            self.relay.off()
        answer = json.dumps({"id": body.get("id"), "ok": True, "code": "ok"})
        props = getattr(message, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        if response_topic:
            out = Properties(PacketTypes.PUBLISH)
            out.CorrelationData = props.CorrelationData  # type: ignore[union-attr]
            client.publish(response_topic, answer, qos=1, properties=out)
        else:
            client.publish(f"{self.base}/cmd/response", answer, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.relay.close()


def _drive(central: Central, mock: Any, params: Params) -> tuple[list[float], list[float], int]:
    """Sends the commands one at a time; returns (to pin, round trip) in seconds, and how many
    answers did not come within ANSWER_TIMEOUT (counted in the round trip at that value)."""
    deadline = time.monotonic() + 60
    for attempt in range(10**6):  # the other side is up once it answers
        central.command("ping", {"id": f"ping-{attempt}"})
        if central.wait_answer(f"ping-{attempt}", 1.0) is not None:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("no answer to a ping within 60 s")
    to_pin: list[float] = []
    round_trip: list[float] = []
    unanswered = 0
    on = False  # relays power up off; the pin is active low
    for n in range(params["warmup"] + params["commands"]):
        on = not on
        command_id = f"lat-{n}"
        before = mock.state
        mock.clear_states()
        sent = time.monotonic()
        central.command(f"relay/{RELAY}", {"id": command_id, "command": "set", "on": on})
        answered = central.wait_answer(command_id, ANSWER_TIMEOUT)
        if len(mock.states) != 2 or bool(mock.states[1].state) == bool(before):
            raise RuntimeError(f"command {command_id}: pin states {mock.states}")
        if n < params["warmup"]:
            continue
        to_pin.append(mock.states[1].timestamp)
        if answered is None:
            unanswered += 1
            round_trip.append(ANSWER_TIMEOUT)
        else:
            round_trip.append(answered - sent)
    return to_pin, round_trip, unanswered


def _summary(samples: list[float]) -> dict[str, Any]:
    figures: dict[str, Any] = {
        f"p{p}": round(percentile(samples, p) * 1000, 2) for p in (50, 95, 99)
    }
    figures["max"] = round(max(samples) * 1000, 2)
    # Every percentile from 0 to 100, for the distribution's plot (benchmarks/plot.py).
    figures["percentiles"] = [round(percentile(samples, p) * 1000, 3) for p in range(101)]
    return figures


def measure_agent(broker: Any, params: Params, workdir: Path) -> dict[str, Any]:
    profile = profile_path(params)
    data = load_toml(profile)
    used = {r.get("pin") for r in data.get("relays", [])} | {
        i.get("pin") for i in data.get("inputs", [])
    }
    pin = next(p for p in CANDIDATE_PINS if p not in used)
    relays = [*data.get("relays", []), {"name": RELAY, "pin": pin, "kind": "generic"}]
    config = node_config(profile, node_id="bench-latency", port=broker.port,
                         protocol=broker.protocol, state_dir=workdir / "state",
                         extra={"relays": relays})  # fmt: skip
    agent = InProcessAgent(config, workdir)
    agent.start()
    central = Central(broker.ports[-1], broker.protocol, agent.config.node.base_topic)
    try:
        mock = agent.agent.hardware.pin_factory().pin(pin)
        to_pin, round_trip, unanswered = _drive(central, mock, params)
    finally:
        central.close()
        agent.stop()
    return {"profile": profile.name, "to_pin_ms": _summary(to_pin),
            "round_trip_ms": _summary(round_trip), "commands": len(to_pin),
            "unanswered": unanswered, "misrouted_answers": central.misrouted}  # fmt: skip


def measure_bare(broker: Any, params: Params) -> dict[str, Any]:
    base = "roomagent/bench-bare"
    pin = CANDIDATE_PINS[-1]  # not one the agent used: MockFactory's pins are process-wide
    responder = BareResponder(broker.port, broker.protocol, base, pin)
    central = Central(broker.ports[-1], broker.protocol, base)
    try:
        to_pin, round_trip, unanswered = _drive(central, responder.relay.pin, params)
    finally:
        central.close()
        responder.close()
    return {"to_pin_ms": _summary(to_pin), "round_trip_ms": _summary(round_trip),
            "commands": len(to_pin), "unanswered": unanswered}  # fmt: skip


def _line(r: dict[str, Any]) -> Callable[[str], str]:
    return lambda key: f"p50 {r[key]['p50']}, p95 {r[key]['p95']}, p99 {r[key]['p99']} ms"


def run(params: Params, workdir: Path) -> Result:
    logging.getLogger().setLevel(logging.WARNING)
    out: Result = {"runs": {}}
    figures, targets = [], []
    for kind in params["brokers"]:
        broker = start_broker(kind, workdir / f"broker-{kind}")
        try:
            agent = measure_agent(broker, params, workdir / kind)
            bare = measure_bare(broker, params)
        finally:
            broker.stop()
        out["runs"][kind] = {"agent": agent, "bare_paho": bare, "protocol": broker.protocol}
        a, b = _line(agent), _line(bare)
        figures.append(figure(f"relay command to pin change ({kind}, {agent['commands']} commands)",
                              a("to_pin_ms"), f"bare paho {b('to_pin_ms')}"))  # fmt: skip
        figures.append(figure(f"relay command to answer at the central client ({kind})",
                              a("round_trip_ms"), f"bare paho {b('round_trip_ms')}"))  # fmt: skip
        if agent["unanswered"] or bare["unanswered"] or agent["misrouted_answers"]:
            figures.append(figure(
                f"answers missing after {ANSWER_TIMEOUT:g} s ({kind})",
                f"{agent['unanswered']} ({agent['misrouted_answers']} on cmd/response)",
                f"bare paho {bare['unanswered']}"))  # fmt: skip
        if kind in params["target_on"]:
            p99 = agent["to_pin_ms"]["p99"]
            targets.append(target(f"command to pin p99 < {TARGET_P99_MS:g} ms on loopback ({kind})",
                                  p99 < TARGET_P99_MS, f"p99 {p99} ms"))  # fmt: skip
    out["figures"], out["targets"] = figures, targets
    return out


BENCHMARK = Benchmark(
    name="latency",
    summary="relay command to MockPin change and to the answer, p50/p95/p99, against bare paho",
    sizes={
        "full": {
            "commands": 3000,
            "warmup": 100,
            "brokers": ["mosquitto", "mosquitto-nodelay", "nats"],
            "target_on": ["mosquitto-nodelay"],
            "config": "",
        },
        "smoke": {
            "commands": 20,
            "warmup": 2,
            "brokers": ["mosquitto-nodelay"],
            "target_on": ["mosquitto-nodelay"],
            "config": "",
        },
    },
    run=run,
)
