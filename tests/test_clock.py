"""A Pi has no real-time clock: until NTP sets it, time.time() is 1970 or the last shutdown.

Readings taken then are held (node.hold_unsynced) and re-stamped with their true time once the
clock is set; if it never is, they go out marked clock_synced=false. Real mosquitto, real SQLite,
the agent in-process with a clock that NTP 'steps' when the test says so.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path

from agent.app.runtime import Agent
from agent.common.clock import SystemClock
from agent.config import schema as config_mod
from tests.conftest import node_config
from tests.mqtt_fixtures import Broker, Subscriber

BOOT_EPOCH = 86400.0  # what the wall clock reads at boot without an RTC: 2 January 1970


class SteppedClock(SystemClock):
    """Wall time runs from 1970 until set() (NTP's step); monotonic time is never stepped."""

    def __init__(self) -> None:
        super().__init__("auto")
        self.is_set = False

    def time(self) -> float:
        return time.time() if self.is_set else BOOT_EPOCH + time.monotonic()

    def synced(self) -> bool:
        return self.is_set


def parse(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def run_agent(tmp_path: Path, broker: Broker, clock: SteppedClock, hold: float,
              scenario_seconds: float, set_after: float | None) -> None:  # fmt: skip
    path = tmp_path / "node.toml"
    text = node_config(broker.port, tmp_path / "state", extra=f"hold_unsynced = {hold}")
    path.write_text(text.replace('clock = "synced"\n', ""))
    agent = Agent(config_mod.load(path), simulate=True, clock=clock)

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.ensure_future(agent.run(stop))
        start = time.monotonic()
        if set_after is not None:
            await asyncio.sleep(set_after)
            clock.is_set = True
        await asyncio.sleep(scenario_seconds - (time.monotonic() - start))
        stop.set()
        await run

    asyncio.run(scenario())


def test_readings_before_ntp_are_held_then_sent_with_their_true_time(
    tmp_path: Path, broker: Broker
) -> None:
    sub = Subscriber(broker.port, "roomagent/test-node/telemetry/#")
    clock = SteppedClock()
    started = time.time()
    try:
        run_agent(tmp_path, broker, clock, hold=60, scenario_seconds=9, set_after=4)
        early = [json.loads(m.payload) for m in sub.on("telemetry")]
    finally:
        sub.close()
    assert len(early) >= 7, early
    seqs = [m["seq"] for m in early]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Nothing went out while the clock said 1970: every reading has its true time.
    assert all(m["clock_synced"] is True for m in early)
    stamps = [parse(m["ts"]) for m in early]
    assert all(started - 1 < t < time.time() + 1 for t in stamps), stamps
    corrected = [m for m in early if m.get("ts_corrected")]
    # About 4 s of readings, one a second, were taken before NTP set the clock.
    assert 3 <= len(corrected) <= 6, [m["ts"] for m in early]
    # Re-stamped readings keep their spacing: one interval apart, give or take scheduling.
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert all(0.5 < g < 1.5 for g in gaps), gaps


def test_if_ntp_never_comes_readings_go_out_marked_unsynced(tmp_path: Path, broker: Broker) -> None:
    sub = Subscriber(broker.port, "roomagent/test-node/telemetry/#")
    try:
        run_agent(tmp_path, broker, SteppedClock(), hold=2, scenario_seconds=5, set_after=None)
        sent = [json.loads(m.payload) for m in sub.on("telemetry")]
    finally:
        sub.close()
    assert len(sent) >= 3
    assert all(m["clock_synced"] is False and "ts_corrected" not in m for m in sent)
    assert all(m["ts"].startswith("1970-01-02T") for m in sent)
