"""Footprint: the agent's resident memory and CPU running the profile, against the floor.

The agent runs as `roomagent run --simulate` would (through benchmarks/agent_child.py, which
only adds a record of its modules at exit), on simulated chips and mock pins, against mosquitto
on loopback. The floor, in the same run and for the same time, is a bare Python process that
imports paho-mqtt and keeps one connection: what any Python MQTT client costs. Figures:
- RSS: sampled every few seconds; the last sample and the peak (VmHWM) are reported.
- CPU seconds per minute: user + system time over the measured period, after a warm-up that
  excludes start-up (which is reported on its own).
- Start-up: from starting the process to its first telemetry message arriving at a subscriber
  (for the floor: to its first message, published as soon as it is connected).
- Modules: what the agent had imported when it stopped, and whether any of the optional
  dependencies (bleak, requests, watchdog, cryptography) was among them.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from agent.config.schema import CONTROL_SECTIONS
from benchmarks.harness import (
    PYTHON,
    REPO,
    Benchmark,
    Params,
    Result,
    cpu_seconds,
    dump_toml,
    figure,
    node_config,
    profile_path,
    python_env,
    rss_kib,
    start_broker,
    stop_processes,
    target,
)
from tests.mqtt_fixtures import Subscriber

TARGET_RSS_RATIO = 1.5
OPTIONAL = ("bleak", "requests", "watchdog", "cryptography", "pymodbus", "serial")
# watchdog is what reloads the config file when it changes, on by default
# (remote_config.watch_file); the others only serve features a config must ask for.
UNNEEDED = ("bleak", "requests", "cryptography", "pymodbus", "serial")

FLOOR = """
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="floor")
client.connect("127.0.0.1", int(sys.argv[1]))
client.loop_start()
client.publish("bench/floor/hello", b"1", qos=1)
while True:
    time.sleep(3600)
"""


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))


def _top_level(modules: list[str]) -> list[str]:
    import sys

    stdlib = getattr(sys, "stdlib_module_names", None)  # Python 3.10+
    tops = sorted({m.split(".")[0] for m in modules})
    if stdlib is None:
        return tops
    return [t for t in tops if t not in stdlib and not t.startswith("_")]


def _sensors_only(config: dict[str, Any]) -> dict[str, Any]:
    """The same node without room control and Home Assistant discovery: the agent's core."""
    trimmed = {k: v for k, v in config.items() if k not in CONTROL_SECTIONS}
    trimmed["node"] = {**config["node"], "id": "bench-sensors", "discovery": False,
                       "state_dir": config["node"]["state_dir"] + "-sensors"}  # fmt: skip
    trimmed["broker"] = {**config["broker"], "client_id": "roomagent-bench-sensors"}
    trimmed["buffer"] = {
        **config["buffer"],
        "path": trimmed["node"]["state_dir"] + "/buffer.sqlite",
    }
    return trimmed


def _without_analytics(config: dict[str, Any]) -> dict[str, Any]:
    """The same node with fault detection switched off ([faults] enabled = false): what issue
    22's monitor costs is the difference."""
    node = {**config["node"], "id": "bench-plain", "state_dir": config["node"]["state_dir"]
            + "-plain"}  # fmt: skip
    return {
        **config,
        "node": node,
        "broker": {**config["broker"], "client_id": "roomagent-bench-plain"},
        "buffer": {**config["buffer"], "path": node["state_dir"] + "/buffer.sqlite"},
        "faults": {"enabled": False},
    }


def _with_room(config: dict[str, Any], analytics: bool) -> dict[str, Any]:
    """The chamber as a [room] with sessions from an hour ahead (so optimum start plans and
    learns), with optimum start and fault detection, or with neither: issue 22's cost is the
    difference between the two."""
    import datetime as dt

    name = "room" if analytics else "room-plain"
    node = {**config["node"], "id": f"bench-{name}", "state_dir": config["node"]["state_dir"]
            + f"-{name}"}  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    sessions = [{"start": (now + dt.timedelta(hours=h)).isoformat(),
                 "end": (now + dt.timedelta(hours=h + 2)).isoformat()}
                for h in (1, 4, 26)]  # fmt: skip
    room: dict[str, Any] = {"volume_m3": 400, "seats": 60, "co2_sensor": "co2",
                            "temperature_sensor": "climate", "preheat_minutes": 120}  # fmt: skip
    if analytics:
        room["optimum_start"] = {"early_stop": True}
    out = {
        **config,
        "node": node,
        "broker": {**config["broker"], "client_id": f"roomagent-bench-{name}"},
        "buffer": {**config["buffer"], "path": node["state_dir"] + "/buffer.sqlite"},
        "room": room,
        "sessions": sessions,
    }
    if not analytics:
        out["faults"] = {"enabled": False}
    return out


def _with_meters(config: dict[str, Any]) -> dict[str, Any]:
    """The same node with one energy meter on each bus kind: an SDM120 on an RS-485 line (a
    simulated pty line with pymodbus's RTU server) and an EM24 behind a Modbus TCP gateway."""
    node = {**config["node"], "id": "bench-meters", "state_dir": config["node"]["state_dir"]
            + "-meters"}  # fmt: skip
    return {
        **config,
        "node": node,
        "broker": {**config["broker"], "client_id": "roomagent-bench-meters"},
        "buffer": {**config["buffer"], "path": node["state_dir"] + "/buffer.sqlite"},
        "modbus": [{"name": "rs485", "serial": "/dev/ttyUSB0", "baudrate": 9600},
                   {"name": "gateway", "tcp": "192.0.2.10:502"}],
        "devices": [*config.get("devices", []),
                    {"name": "lights_meter", "driver": "sdm120", "bus": "rs485", "address": 1,
                     "interval": 10},
                    {"name": "feeder", "driver": "em24", "bus": "gateway", "address": 1,
                     "interval": 10}],
    }  # fmt: skip


def run(params: Params, workdir: Path) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    profile = profile_path(params)
    broker = start_broker("mosquitto", workdir / "broker")
    config = node_config(profile, node_id="bench-footprint", port=broker.port, protocol="5",
                         state_dir=workdir / "state")  # fmt: skip
    configs = {"agent": config}
    if params["sensors_only"]:
        configs["sensors-only"] = _sensors_only(config)
    if params.get("meters"):
        configs["meters"] = _with_meters(config)
    if params.get("without_analytics"):
        configs["no-analytics"] = _without_analytics(config)
    if params.get("room_analytics"):
        configs["room"] = _with_room(config, True)
        configs["room-plain"] = _with_room(config, False)
    sub = Subscriber(broker.port, "#")
    env = python_env()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    started: dict[str, float] = {}
    first: dict[str, float] = {}

    def launch(name: str, command: list[str], first_topic: str) -> None:
        """Started one at a time, so that start-up times are not measured against each other."""
        started[name] = time.monotonic()
        procs[name] = subprocess.Popen(command, env=env, cwd=REPO)
        if not sub.wait_for(lambda ms: any(m.topic.startswith(first_topic) for m in ms), 60):
            raise RuntimeError(f"{name}: nothing published on {first_topic} within 60 s")
        first[name] = time.monotonic()

    try:
        for name, cfg in configs.items():
            path = workdir / f"{name}.toml"
            path.write_text(dump_toml(cfg))
            launch(name, [PYTHON, "-m", "benchmarks.agent_child", str(workdir / f"{name}.modules"),
                          "run", str(path), "--simulate", "--log-level", "WARNING"],
                   f"roomagent/{cfg['node']['id']}/telemetry/")  # fmt: skip
        launch("floor", [PYTHON, "-c", FLOOR, str(broker.port)], "bench/floor/hello")

        time.sleep(params["warmup_s"])
        cpu0 = {k: cpu_seconds(p.pid) for k, p in procs.items()}
        t0 = time.monotonic()
        samples: dict[str, list[int]] = {k: [] for k in procs}
        while time.monotonic() - t0 < params["seconds"]:
            for k, p in procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"the {k} process exited with {p.returncode}")
                samples[k].append(rss_kib(p.pid))
            time.sleep(min(params["sample_every_s"], params["seconds"]))
        elapsed = time.monotonic() - t0
        cpu = {k: cpu_seconds(p.pid) - cpu0[k] for k, p in procs.items()}
        peaks = {k: peak_rss_kib(p.pid) for k, p in procs.items()}
    finally:
        stop_processes(procs.values())
        sub.close()
        broker.stop()
    result: dict[str, Any] = {"profile": profile.name, "seconds": round(elapsed, 1)}
    for k in procs:
        result[k] = {
            "rss_kib_last": samples[k][-1],
            "rss_kib_max_sampled": max(samples[k]),
            "rss_kib_peak": peaks[k],
            "cpu_s_per_min": round(cpu[k] * 60 / elapsed, 3),
            "startup_s": round(first[k] - started[k], 2),
            "rss_ratio": round(samples[k][-1] / samples["floor"][-1], 2),
            # Every sample, after the warm-up: memory that keeps growing is a leak.
            "rss_kib_samples": samples[k],
        }
        if k in configs:
            result[k]["exit_code"] = procs[k].returncode
            modules_file = workdir / f"{k}.modules"
            modules = json.loads(modules_file.read_text()) if modules_file.exists() else []
            result[k]["modules"] = {
                "count": len(modules),
                "third_party": _top_level(modules),
                "optional_loaded": [m for m in OPTIONAL if m in {x.split(".")[0] for x in modules}],
            }
    a, f = result["agent"], result["floor"]
    ratio = a["rss_ratio"]
    loaded = a["modules"]["optional_loaded"]
    unwanted = [m for m in params["must_not_load"] if m in loaded]
    figures = [
        figure(f"resident memory, {profile.name} on simulated hardware, after {elapsed:.0f} s",
               f"{a['rss_kib_last'] / 1024:.1f} MiB (peak {a['rss_kib_peak'] / 1024:.1f})",
               f"bare paho {f['rss_kib_last'] / 1024:.1f} MiB (ratio {ratio:.2f})"),
        figure(f"resident memory change over the {elapsed:.0f} s measured",
               f"{(a['rss_kib_last'] - a['rss_kib_samples'][0]) / 1024:+.1f} MiB",
               f"bare paho {(f['rss_kib_last'] - f['rss_kib_samples'][0]) / 1024:+.1f} MiB"),
        figure("CPU per minute of running", f"{a['cpu_s_per_min']:.2f} CPU-s/min",
               f"bare paho {f['cpu_s_per_min']:.3f} CPU-s/min"),
        figure("start-up to the first published reading", f"{a['startup_s']:.2f} s",
               f"bare paho to its first message {f['startup_s']:.2f} s"),
        figure(f"optional modules loaded ({', '.join(OPTIONAL)})",
               ", ".join(loaded) or "none", f"{a['modules']['count']} modules in all"),
    ]  # fmt: skip
    if "sensors-only" in result:
        o = result["sensors-only"]
        figures.append(figure(
            "the same without room control and discovery: memory, CPU",
            f"{o['rss_kib_last'] / 1024:.1f} MiB, {o['cpu_s_per_min']:.2f} CPU-s/min",
            f"ratio to bare paho {o['rss_ratio']:.2f}"))  # fmt: skip
    if "meters" in result:
        m = result["meters"]
        figures.append(figure(
            "with an SDM120 on RS-485 and an EM24 on Modbus TCP: memory, CPU",
            f"{m['rss_kib_last'] / 1024:.1f} MiB, {m['cpu_s_per_min']:.2f} CPU-s/min",
            f"without meters {a['rss_kib_last'] / 1024:.1f} MiB, {a['cpu_s_per_min']:.2f} "
            f"CPU-s/min (ratio {m['rss_kib_last'] / a['rss_kib_last']:.2f})"))  # fmt: skip
    if "no-analytics" in result:
        n = result["no-analytics"]
        figures.append(figure(
            "the same without fault detection ([faults] enabled = false): memory, CPU",
            f"{n['rss_kib_last'] / 1024:.1f} MiB, {n['cpu_s_per_min']:.2f} CPU-s/min",
            f"with it {a['rss_kib_last'] / 1024:.1f} MiB, {a['cpu_s_per_min']:.2f} CPU-s/min "
            f"(ratio {a['rss_kib_last'] / n['rss_kib_last']:.2f})"))  # fmt: skip
    if "room" in result:
        r, n = result["room"], result["room-plain"]
        figures.append(figure(
            "with a [room], optimum start (early stop on) and fault detection: memory, CPU",
            f"{r['rss_kib_last'] / 1024:.1f} MiB, {r['cpu_s_per_min']:.2f} CPU-s/min",
            f"the same [room] without them {n['rss_kib_last'] / 1024:.1f} MiB, "
            f"{n['cpu_s_per_min']:.2f} CPU-s/min (ratios "
            f"{r['rss_kib_last'] / n['rss_kib_last']:.2f}, "
            f"{r['cpu_s_per_min'] / max(n['cpu_s_per_min'], 1e-9):.2f})"))  # fmt: skip
    result["figures"] = figures
    result["targets"] = [
        target(f"RSS < {TARGET_RSS_RATIO} x the bare-paho floor", ratio < TARGET_RSS_RATIO,
               f"ratio {ratio:.2f}"),
        target("unused optional dependencies not imported",
               not unwanted and a["modules"]["count"] > 0,
               f"loaded: {', '.join(loaded) or 'none'}"),
    ]  # fmt: skip
    return result


BENCHMARK = Benchmark(
    name="footprint",
    summary="RSS and CPU of the agent running the profile against a bare paho process",
    sizes={
        "full": {
            "seconds": 180,
            "warmup_s": 20,
            "sample_every_s": 5,
            "config": "",
            "must_not_load": list(UNNEEDED),
            "sensors_only": True,
            "meters": True,
            "without_analytics": True,
            "room_analytics": True,
        },
        "smoke": {
            "seconds": 2,
            "warmup_s": 0,
            "sample_every_s": 1,
            "config": "",
            "must_not_load": list(UNNEEDED),
            "sensors_only": True,
            "meters": True,
            "room_analytics": False,
        },
    },
    run=run,
)
