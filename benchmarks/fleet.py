"""Fleet: M real agent processes against one broker, and a reconnect storm after it restarts.

Each node is a real `roomagent run` process (simulated chips and pins, the profile's config with
its own node id, state directory and broker port), started a little apart. A central client
with a persistent session subscribes to roomagent/#. Figures:
- steady state: messages per second through the broker to the central client, and each
  agent's CPU (CPU-seconds per minute) and resident memory;
- the storm: the broker (every server of a cluster) is stopped for outage_s while the agents
  keep buffering, then started again. "Back" is the moment the central client sees a node's
  `online` status again; "drained" is the moment it holds every sequence number the node had
  committed by the restart. The agents reconnect with their own configured backoff and jitter.
- loss: after the agents are stopped, every node's received sequence numbers plus those still
  in its buffer must cover 1..last committed, with no gap (duplicates are allowed: QoS 1).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

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
    percentile,
    profile_path,
    python_env,
    rss_kib,
    start_broker,
    target,
    wait_until,
)

BUFFERED = ("telemetry", "events", "energy")  # topics whose payloads carry the outbox seq


class FleetCentral:
    """Counts everything under roomagent/#, keeps each node's sequence numbers and status."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.seqs: dict[str, set[int]] = {}
        self.duplicates = 0
        self.count = 0
        self.online_at: dict[str, float] = {}
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="fleet-central",
            clean_session=False,  # nothing is lost while it reconnects after the broker restart
        )
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe("roomagent/#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(60):
            raise RuntimeError("fleet central client could not subscribe")

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        parts = message.topic.split("/")
        node = parts[1] if len(parts) > 2 else ""
        seq: Optional[int] = None
        if len(parts) > 2 and parts[2] in BUFFERED:
            seq = json.loads(message.payload).get("seq")
        with self.lock:
            self.count += 1
            if seq is not None:
                got = self.seqs.setdefault(node, set())
                if seq in got:
                    self.duplicates += 1
                got.add(seq)
            elif parts[2:] == ["status"] and message.payload == b"online" and not message.retain:
                # Live, not the retained copy a (re)subscription brings back.
                self.online_at[node] = now

    def has_all(self, node: str, last: int) -> bool:
        with self.lock:
            got = self.seqs.get(node, set())
            return len(got) >= last and all(s in got for s in range(1, last + 1))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _max_committed(db: Path) -> int:
    """The highest seq the node has committed: in its buffer, or already delivered."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        in_buffer = conn.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        seq_next = conn.execute("SELECT value FROM meta WHERE key = 'seq_next'").fetchone()
    return max(in_buffer or 0, (seq_next[0] - 1) if seq_next else 0)


def _left_in_buffer(db: Path) -> tuple[int, set[int]]:
    """(last committed seq, seqs still waiting) of a node that has stopped cleanly."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        seq_next = conn.execute("SELECT value FROM meta WHERE key = 'seq_next'").fetchone()[0]
        left = {r[0] for r in conn.execute("SELECT seq FROM outbox")}
    return seq_next - 1, left


def storm(kind: str, params: Params, workdir: Path) -> dict[str, Any]:
    profile = profile_path(params)
    broker = start_broker(kind, workdir / "broker")
    central = FleetCentral(broker.ports[-1])
    env = python_env()
    nodes: list[str] = []
    dbs: dict[str, Path] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = []
    try:
        started = time.monotonic()
        for i in range(params["nodes"]):
            node = f"fleet-{i:03d}"
            state = workdir / node
            config = node_config(profile, node_id=node, port=broker.ports[i % len(broker.ports)],
                                 protocol=broker.protocol, state_dir=state)  # fmt: skip
            config["node"]["discovery"] = params["discovery"]
            path = workdir / f"{node}.toml"
            path.write_text(dump_toml(config))
            log = open(workdir / f"{node}.log", "wb")  # noqa: SIM115 - closed in finally
            logs.append(log)
            procs[node] = subprocess.Popen(
                [PYTHON, "-m", "agent", "run", str(path), "--log-level", "WARNING"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
            )  # fmt: skip
            nodes.append(node)
            dbs[node] = state / "buffer.sqlite"
            time.sleep(params["start_interval_s"])
        if not wait_until(lambda: all(central.seqs.get(n) for n in nodes), 300, 0.5):
            silent = [n for n in nodes if not central.seqs.get(n)]
            raise RuntimeError(f"{len(silent)} nodes published nothing, e.g. {silent[:3]}")
        all_up = time.monotonic() - started

        # Steady state.
        cpu0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        count0, t0 = central.count, time.monotonic()
        time.sleep(params["steady_s"])
        elapsed = time.monotonic() - t0
        rate = (central.count - count0) / elapsed
        cpu_min = [(cpu_seconds(p.pid) - cpu0[n]) * 60 / elapsed for n, p in procs.items()]
        rss = [rss_kib(p.pid) for p in procs.values()]

        # The storm.
        broker.stop()
        time.sleep(params["outage_s"])
        targets = {n: _max_committed(dbs[n]) for n in nodes}
        backlog = sum(targets[n] - max(central.seqs.get(n, {0})) for n in nodes)
        restart = time.monotonic()
        broker.start()
        ready = time.monotonic() - restart
        count1 = central.count

        def back() -> bool:
            return all(central.online_at.get(n, 0) > restart for n in nodes)

        # Each node's backlog is checked from the restart on, as the nodes come back: a node's
        # time is when the last reading it buffered had arrived.
        pending = set(nodes)
        drained_after: list[float] = []
        deadline = restart + params["storm_timeout_s"]
        while time.monotonic() < deadline and (pending or not back()):
            done = {n for n in pending if central.has_all(n, targets[n])}
            drained_after += [time.monotonic() - restart] * len(done)
            pending -= done
            time.sleep(0.1)
        ok_back = back()
        back_times = sorted(central.online_at.get(n, 0) - restart for n in nodes)
        drained = max(drained_after, default=0.0) if not pending else time.monotonic() - restart
        storm_rate = (central.count - count1) / max(drained, 1e-9)

        # Loss: stop every agent cleanly, then compare.
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(60) for p in procs.values()]
        finals = {n: _left_in_buffer(dbs[n]) for n in nodes}

        def complete() -> bool:
            with central.lock:
                return all(
                    set(range(1, last + 1)) <= central.seqs.get(n, set()) | left
                    for n, (last, left) in finals.items()
                )

        wait_until(complete, 30, 0.2)
        with central.lock:
            missing = sum(
                len(set(range(1, last + 1)) - central.seqs.get(n, set()) - left)
                for n, (last, left) in finals.items()
            )
            duplicates = central.duplicates
            delivered = sum(len(central.seqs.get(n, set())) for n in nodes)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for log in logs:
            log.close()
        central.close()
        broker.stop()
    return {
        "broker": kind,
        "protocol": broker.protocol,
        "nodes": len(nodes),
        "profile": profile.name,
        "all_publishing_after_s": round(all_up, 1),
        "steady": {
            "seconds": round(elapsed, 1),
            "broker_msgs_per_s": round(rate, 1),
            "agent_cpu_s_per_min_mean": round(sum(cpu_min) / len(cpu_min), 3),
            "agent_cpu_s_per_min_max": round(max(cpu_min), 3),
            "agent_rss_mib_mean": round(sum(rss) / len(rss) / 1024, 1),
            "agent_rss_mib_max": round(max(rss) / 1024, 1),
        },
        "storm": {
            "outage_s": params["outage_s"],
            "backlog_messages": backlog,
            "broker_ready_s": round(ready, 2),
            "all_back": ok_back,
            "back_s_p50": round(percentile(back_times, 50), 2),
            "back_s_max": round(back_times[-1], 2),
            "all_drained": not pending,
            "drained_s": round(drained, 2),
            "msgs_per_s_while_draining": round(storm_rate, 1),
            # For the storm's plot (benchmarks/plot.py): seconds after the restart, one per node.
            "back_after_s": [round(t, 2) for t in back_times],
            "drained_after_s": [round(t, 2) for t in sorted(drained_after)],
        },
        "loss": {
            "delivered_seqs": delivered,
            "missing": missing,
            "duplicates": duplicates,
            "exit_codes_nonzero": sum(1 for c in codes if c != 0),
        },
    }


def run(params: Params, workdir: Path) -> Result:
    out: Result = {"runs": {}}
    figures, targets = [], []
    for kind in params["brokers"]:
        r = storm(kind, params, workdir / kind)
        out["runs"][kind] = r
        s, st, lo = r["steady"], r["storm"], r["loss"]
        name = f"{r['nodes']} agents, {kind} (MQTT {r['protocol']})"
        figures += [
            figure(f"{name}: steady state",
                   f"{s['broker_msgs_per_s']:,.0f} msg/s through the broker",
                   f"agent CPU {s['agent_cpu_s_per_min_mean']:.2f} CPU-s/min each "
                   f"(max {s['agent_cpu_s_per_min_max']:.2f}), RSS {s['agent_rss_mib_mean']} MiB"),
            figure(f"{name}: broker restart after {st['outage_s']} s",
                   f"all back {st['back_s_max']} s (p50 {st['back_s_p50']}), "
                   f"all drained {st['drained_s']} s",
                   f"{st['backlog_messages']:,} buffered; broker ready {st['broker_ready_s']} s"),
            figure(f"{name}: loss check by sequence number",
                   f"{lo['missing']} missing of {lo['delivered_seqs']:,}",
                   f"{lo['duplicates']} duplicates (QoS 1 allows them)"),
        ]  # fmt: skip
        targets.append(target(
            f"reconnect storm of {r['nodes']} nodes drained without loss ({kind})",
            st["all_back"] and st["all_drained"] and lo["missing"] == 0,
            f"back {st['all_back']}, drained {st['all_drained']}, missing {lo['missing']}",
        ))  # fmt: skip
    out["figures"], out["targets"] = figures, targets
    return out


BENCHMARK = Benchmark(
    name="fleet",
    summary="M real agent processes on one broker; reconnect storm after a broker restart",
    sizes={
        "full": {
            "nodes": 100,
            "brokers": ["mosquitto", "nats"],
            "start_interval_s": 0.3,
            "steady_s": 60,
            "outage_s": 30,
            "storm_timeout_s": 300,
            "discovery": True,
            "config": "",
        },
        "smoke": {
            "nodes": 2,
            "brokers": ["mosquitto"],
            "start_interval_s": 0.0,
            "steady_s": 1,
            "outage_s": 1,
            "storm_timeout_s": 60,
            "discovery": True,
            "config": "",
        },
    },
    run=run,
)
