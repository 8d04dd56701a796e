"""Backlog drain: N buffered readings sent to the broker at QoS 1, against bare paho-mqtt.

The agent's side is its own forwarding path (Outbox -> Forwarder -> MqttLink, acks handed back
to an asyncio loop as in agent.app.runtime), timed from the first fetch to the moment the last row
is deleted from the buffer. The baseline is a bare paho client publishing the same payloads
with the same in-flight window to the same broker, timed from the first publish to the last
PUBACK. Runs alternate between the two and the best of each is kept: on a shared machine noise
only ever slows a run down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config.schema import BrokerConfig
from agent.mqtt.contract import telemetry_payload
from agent.mqtt.link import MqttLink
from agent.pipeline.forwarder import Forwarder
from agent.pipeline.outbox import Outbox
from benchmarks.harness import Benchmark, Params, Result, figure, target
from tests.mqtt_fixtures import make_broker

VALUES = {"temperature": 21.53, "humidity": 40.12, "pressure": 1013.25}
TOPIC = "roomagent/bench/telemetry/climate"
TARGET_RATIO = 0.6


def fill(box: Outbox, rows: int) -> None:
    """The backlog: rows readings as the agent stores them, committed in large transactions
    (filling is not what is measured)."""
    stamp = time.time()
    for start in range(0, rows, 5000):
        count = min(5000, rows - start)
        box.append_many(
            (TOPIC, lambda seq: telemetry_payload(stamp, seq, True, VALUES)) for _ in range(count)
        )


def bare_paho(port: int, protocol: str, payloads: list[bytes], inflight: int) -> float:
    """Seconds for a bare paho client to have every payload acknowledged at QoS 1."""
    done = threading.Event()
    acked = 0

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == len(payloads):
            done.set()

    connected = threading.Event()
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bench-bare-{time.monotonic_ns()}",
        protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
    )
    client.max_inflight_messages_set(inflight)
    client.on_publish = on_publish
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(30):
        raise RuntimeError("bare paho client could not connect")
    start = time.perf_counter()
    for p in payloads:
        client.publish(TOPIC, p, qos=1)
    if not done.wait(600):
        raise RuntimeError(f"bare paho: only {acked} of {len(payloads)} acknowledged")
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


async def _agent_drain(port: int, protocol: str, box: Outbox, inflight: int) -> float:
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")

    async def run_db(fn: Any, *args: Any) -> Any:
        return await loop.run_in_executor(pool, functools.partial(fn, *args))

    forwarder: Forwarder
    connected = asyncio.Event()
    link = MqttLink(
        BrokerConfig(host="127.0.0.1", port=port, protocol=protocol,
                     client_id=f"bench-agent-{time.monotonic_ns()}"),
        status_topic="roomagent/bench/status",
        on_connect=lambda: loop.call_soon_threadsafe(connected.set),
        on_ack=lambda mid, ok: forwarder.on_ack(mid, ok),  # on paho's thread, as in the agent
        max_inflight=inflight,
    )  # fmt: skip
    forwarder = Forwarder(box, link, run_db, inflight)
    link.start()
    await asyncio.wait_for(connected.wait(), 30)
    await asyncio.sleep(0.2)  # the birth message and its ack are out of the way
    rows = box.stats().rows
    start = time.perf_counter()
    task = asyncio.ensure_future(forwarder.run())
    forwarder.notify()
    deadline = time.monotonic() + 600
    while box.stats().rows and time.monotonic() < deadline:
        await asyncio.sleep(0.02)  # checking costs the agent time too; at most 20 ms late
    elapsed = time.perf_counter() - start
    forwarder.stopped = True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    link.stop()
    pool.shutdown()
    if box.stats().rows or forwarder.delivered != rows:
        raise RuntimeError(f"agent drain: {forwarder.delivered} of {rows} delivered")
    return elapsed


def agent_drain(port: int, protocol: str, box: Outbox, inflight: int) -> float:
    """Seconds for the agent's forwarding path to empty the buffer."""
    return asyncio.run(_agent_drain(port, protocol, box, inflight))


def run(params: Params, workdir: Path) -> Result:
    rows, inflight, repeats = params["rows"], params["inflight"], params["repeats"]
    out: Result = {"rows": rows, "max_inflight": inflight, "qos": 1, "runs": {}}
    figures, targets = [], []
    for kind in params["brokers"]:
        broker = make_broker(kind, workdir / f"drain-{kind}")
        broker.start()
        try:
            box = Outbox(workdir / f"drain-{kind}.sqlite", max_rows=10**8, max_bytes=10**11,
                         durability="full")  # fmt: skip
            agent_s: list[float] = []
            bare_s: list[float] = []
            for _ in range(repeats):
                fill(box, rows)
                payloads = [r.payload for r in box.fetch(0, rows)]
                bare_s.append(bare_paho(broker.port, broker.protocol, payloads, inflight))
                agent_s.append(agent_drain(broker.port, broker.protocol, box, inflight))
            box.close()
        finally:
            broker.stop()
        agent_rate, bare_rate = rows / min(agent_s), rows / min(bare_s)
        ratio = agent_rate / bare_rate
        out["runs"][kind] = {
            "protocol": broker.protocol,
            "agent_seconds": [round(s, 3) for s in agent_s],
            "bare_paho_seconds": [round(s, 3) for s in bare_s],
            "agent_msgs_per_s": round(agent_rate),
            "bare_paho_msgs_per_s": round(bare_rate),
            "ratio": round(ratio, 2),
        }
        figures.append(figure(
            f"drain {rows} rows QoS 1, {inflight} in flight ({kind}, MQTT {broker.protocol})",
            f"{agent_rate:,.0f} msg/s",
            f"bare paho {bare_rate:,.0f} msg/s (ratio {ratio:.2f})",
        ))  # fmt: skip
        if kind == "mosquitto":
            targets.append(target(f"drain >= {TARGET_RATIO} of bare paho", ratio >= TARGET_RATIO,
                                  f"ratio {ratio:.2f}"))  # fmt: skip
    out["figures"], out["targets"] = figures, targets
    return out


BENCHMARK = Benchmark(
    name="drain",
    summary="backlog drain at QoS 1 against bare paho-mqtt on the same broker",
    sizes={
        "full": {"rows": 50000, "inflight": 64, "repeats": 3, "brokers": ["mosquitto", "nats"]},
        "smoke": {"rows": 200, "inflight": 16, "repeats": 1, "brokers": ["mosquitto"]},
    },
    run=run,
)
