"""Benchmarks: buffer ingest, backlog drain against bare paho, agent memory.

    python -m benchmarks.run [ingest] [drain] [rss] [--rows N] [--rss-seconds S] [--json FILE]

Each figure is printed and, where a baseline exists, compared with it in the same run, on the
same broker, because absolute numbers drift between machines.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import BrokerConfig
from agent.contract import telemetry_payload
from agent.forwarder import Forwarder
from agent.mqtt_link import MqttLink
from agent.outbox import Outbox
from tests.mqtt_fixtures import Broker

REPO = Path(__file__).resolve().parent.parent
VALUES = {"temperature": 21.53, "humidity": 40.12, "pressure": 1013.25}
TOPIC = "roomagent/bench/telemetry/climate"


def payload(seq: int) -> bytes:
    return telemetry_payload(time.time(), seq, True, VALUES)


def write_bytes() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("write_bytes"))


def bench_ingest(rows: int, directory: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for durability in ("full", "normal"):
        box = Outbox(
            directory / f"ingest-{durability}.sqlite",
            max_rows=10**7,
            max_bytes=10**10,
            durability=durability,
        )
        before_io, start = write_bytes(), time.perf_counter()
        for _ in range(rows):
            box.append(TOPIC, payload)  # one transaction per reading, as the agent does
        elapsed = time.perf_counter() - start
        written = write_bytes() - before_io
        box.close()
        out[durability] = {
            "readings_per_s": round(rows / elapsed),
            "disk_bytes_per_reading": round(written / rows),
        }
    return out


def bench_bare_paho(port: int, rows: int, inflight: int) -> float:
    done = threading.Event()
    acked = 0

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == rows:
            done.set()

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bare")
    client.max_inflight_messages_set(inflight)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    payloads = [payload(i) for i in range(rows)]
    start = time.perf_counter()
    for p in payloads:
        client.publish(TOPIC, p, qos=1)
    done.wait(300)
    elapsed = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    return rows / elapsed


async def _drain(port: int, box: Outbox, inflight: int) -> float:
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(1)

    async def run_db(fn: Any, *args: Any) -> Any:
        return await loop.run_in_executor(pool, functools.partial(fn, *args))

    forwarder: Forwarder
    connected = asyncio.Event()
    link = MqttLink(
        BrokerConfig(host="127.0.0.1", port=port, client_id="bench-agent"),
        status_topic="roomagent/bench/status",
        on_connect=lambda: loop.call_soon_threadsafe(connected.set),
        on_ack=lambda mid, ok: loop.call_soon_threadsafe(forwarder.on_ack, mid, ok),
        max_inflight=inflight,
    )
    forwarder = Forwarder(box, link, run_db, inflight)
    link.start()
    await connected.wait()
    start = time.perf_counter()
    task = asyncio.ensure_future(forwarder.run())
    forwarder.notify()
    while box.stats().rows:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    forwarder.stopped = True
    task.cancel()
    link.stop()
    pool.shutdown()
    return elapsed


def bench_drain(rows: int, directory: Path, inflight: int = 64) -> dict[str, Any]:
    broker = Broker(directory / "broker")
    broker.start()
    try:
        box = Outbox(directory / "drain.sqlite", max_rows=10**7, max_bytes=10**10)
        box.append_many((TOPIC, payload) for _ in range(rows))
        agent_rate = rows / asyncio.run(_drain(broker.port, box, inflight))
        bare_rate = bench_bare_paho(broker.port, rows, inflight)
    finally:
        broker.stop()
    return {
        "rows": rows,
        "max_inflight": inflight,
        "agent_msgs_per_s": round(agent_rate),
        "bare_paho_msgs_per_s": round(bare_rate),
        "ratio": round(agent_rate / bare_rate, 2),
    }


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def bench_rss(seconds: float, directory: Path) -> dict[str, Any]:
    broker = Broker(directory / "rss-broker")
    broker.start()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    floor_code = (
        "import time, paho.mqtt.client as m; from paho.mqtt.enums import CallbackAPIVersion as V;"
        f"c = m.Client(callback_api_version=V.VERSION2); c.connect('127.0.0.1', {broker.port});"
        "c.loop_start(); time.sleep(1e6)"
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", str(REPO / "firmware_configs" / "demo.toml"),
         "--simulate", "--broker", f"127.0.0.1:{broker.port}", "--state-dir",
         str(directory / "rss-state"), "--log-level", "WARNING"], env=env,
    )  # fmt: skip
    floor = subprocess.Popen([sys.executable, "-c", floor_code], env=env)
    try:
        time.sleep(seconds)
        result = {
            "seconds": seconds,
            "agent_rss_kib": rss_kib(agent.pid),
            "bare_paho_rss_kib": rss_kib(floor.pid),
        }
        result["ratio"] = round(result["agent_rss_kib"] / result["bare_paho_rss_kib"], 2)
        return result
    finally:
        for p in (agent, floor):
            p.terminate()
            p.wait(15)
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="*", default=["ingest", "drain", "rss"])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--ingest-rows", type=int, default=2000)
    parser.add_argument("--rss-seconds", type=float, default=60)
    parser.add_argument(
        "--json", type=Path, default=REPO / "benchmarks" / "results" / "latest.json"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        if "ingest" in args.which:
            results["ingest"] = bench_ingest(args.ingest_rows, d)
            print("buffer ingest (one commit per reading):", json.dumps(results["ingest"]))
        if "drain" in args.which:
            results["drain"] = bench_drain(args.rows, d)
            print("backlog drain at QoS 1:", json.dumps(results["drain"]))
        if "rss" in args.which:
            results["rss"] = bench_rss(args.rss_seconds, d)
            print("resident memory, demo agent vs bare paho:", json.dumps(results["rss"]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
