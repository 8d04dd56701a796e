"""A shipped profile on simulated hardware against a real mosquitto, for minutes (issue 15's
acceptance run): the real agent process, every device's achieved cadence as a central system
sees it.

    python -m benchmarks.profile_cadence firmware_configs/demo.toml [--minutes 10]

Per device: the configured interval, the `sample_interval` of its last retained state (the
agent's own median of its last 60 intervals), the median and p99 of the intervals between the
telemetry timestamps received, and when the first VOC index was measured and when it arrived,
after the agent started.
Prints JSON. Not part of `benchmarks.run`: it takes real minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from benchmarks.harness import load_toml, percentile, python_env, start_broker


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def measure(config: Path, minutes: float, workdir: Path) -> dict[str, Any]:
    profile = load_toml(config)
    base = profile["node"].get("base_topic") or f"roomagent/{profile['node']['id']}"
    devices = {d["name"]: float(d["interval"]) for d in profile.get("devices", [])}
    broker = start_broker("mosquitto", workdir / "broker")
    telemetry: dict[str, list[float]] = {name: [] for name in devices}
    states: dict[str, dict[str, Any]] = {}
    first_voc: list[tuple[float, float]] = []  # (its timestamp, when it arrived), wall clock

    def on_message(client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        kind, _, device = msg.topic[len(base) + 1 :].partition("/")
        if not msg.payload or device not in devices:
            return
        body = json.loads(msg.payload)
        if kind == "telemetry":
            telemetry[device].append(_ts(body["ts"]))
            if "voc_index" in body.get("values", {}) and not first_voc:
                first_voc.append((_ts(body["ts"]), time.time()))
        elif kind == "state":
            states[device] = body

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cadence-check")
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(f"{base}/#", qos=1)
    sub.loop_start()
    agent = None
    log = open(workdir / "agent.log", "wb")  # noqa: SIM115 (closed below, after the agent)
    try:
        started = time.time()
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--simulate", str(config),
             "--broker", f"127.0.0.1:{broker.port}", "--state-dir", str(workdir / "state"),
             "--log-level", "WARNING"],
            env=python_env(), stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        time.sleep(minutes * 60)
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(30)
        log.close()
        sub.loop_stop()
        broker.stop()
    out: dict[str, Any] = {"profile": config.name, "minutes": minutes, "devices": {}}
    for name, interval in devices.items():
        times = sorted(telemetry[name])
        gaps = [b - a for a, b in zip(times, times[1:])]
        state = states.get(name, {})
        out["devices"][name] = {
            "configured_s": interval,
            "state_sample_interval_s": state.get("sample_interval"),
            "state_cadence": state.get("cadence"),
            "telemetry": len(times),
            "telemetry_median_s": round(statistics.median(gaps), 3) if gaps else None,
            "telemetry_p99_s": round(percentile(gaps, 99), 3) if gaps else None,
        }
    # Measured (its timestamp) and received: on a node whose clock is not synchronised, readings
    # wait up to node.hold_unsynced (120 s) in the buffer before they are sent.
    if first_voc:
        out["first_voc_index_s"] = round(first_voc[0][0] - started, 1)
        out["first_voc_index_received_s"] = round(first_voc[0][1] - started, 1)
    else:
        out["first_voc_index_s"] = out["first_voc_index_received_s"] = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_cadence")
    parser.add_argument("config", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="roomagent-cadence-") as scratch:
        result = measure(args.config.resolve(), args.minutes, Path(scratch))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
