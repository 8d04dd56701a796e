"""The SIGKILL loop of issue 19: >= 60 kills while readings flow and the broker flaps.

With the RAM stage (durability "staged", the default) a reading the agent accepted is in the
stage or on the card; a kill must lose none of them, never reuse a seq, and leave both
databases intact. The broker is restarted on its own rhythm, independent of the kills, so kills
land while connected, while reconnecting, mid-drain and mid-spill.

The KILLS kills are split over CHAINS independent chains (each its own state directory, broker
and flapper), one test each, so that pytest-xdist runs them side by side: a kill's time is
mostly waiting for the agent.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.buffer_files import FAST_ROOM, committed
from tests.central import BASE
from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber
from tests.soak import SOAK

KILLS = 60
CHAINS = 3
# A short sync interval, so that kills also land around spills to the card.
ROOM = "[buffer]\nsync_interval = 2\n" + FAST_ROOM


def room(stage_dir: Path) -> str:
    """Each chain's stages in a directory of its own: in the shared default one, another test's
    agent starting beside it may sweep a killed chain's stage (its lock is free, nothing in it
    is deliverable) while this test reads it, which SQLite reports as a disk I/O error."""
    return ROOM.replace("[buffer]\n", f'[buffer]\nstage_dir = "{stage_dir}"\n', 1)


@pytest.mark.long
@pytest.mark.parametrize("chain", range(CHAINS))
def test_60_sigkills_with_a_flapping_broker_lose_nothing_accepted(
    chain: int, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    kills = max(1, round(KILLS / CHAINS * SOAK))
    rng = random.Random(60 + chain)
    state = tmp_path / "state"
    stage_dir = tmp_path / "run"
    broker = Broker(tmp_path / "broker")
    broker.start()
    sub = Subscriber(broker.port, f"{BASE}/telemetry/#", client_id="central", persistent=True)
    stop = threading.Event()
    flaps = 0

    def flap() -> None:
        nonlocal flaps
        while not stop.wait(rng.uniform(2.0, 5.0)):
            broker.stop()
            flaps += 1
            if stop.wait(rng.uniform(0.5, 2.0)):
                break
            broker.start()

    flapper = threading.Thread(target=flap, daemon=True)
    seen: set[int] = set()
    highest = 0
    try:
        flapper.start()
        for i in range(kills):
            agent = agent_process(node_config(broker.port, state, devices=room(stage_dir)))
            agent.start()
            time.sleep(rng.uniform(0.6, 2.2))
            agent.kill()
            rows, next_seq = committed(
                state, with_reserved=True, stage_dir=stage_dir
            )  # integrity_check inside
            assert next_seq >= highest, f"kill {i}: the sequence went back"
            highest = next_seq
            seen |= rows
        stop.set()
        flapper.join(10)
        if broker.proc is None:
            broker.start()
        final = agent_process(node_config(broker.port, state, devices=room(stage_dir)))
        final.start()
        missing = lambda: seen - {json.loads(m.payload)["seq"] for m in sub.on("/telemetry/")}  # noqa: E731
        assert sub.wait_for(lambda ms: not missing(), 60), sorted(missing())[:20]

        # Running before it is stopped: a reading of its own, above every number reserved
        # before (everything older may have arrived before it had even started).
        def newest() -> int:
            return max((json.loads(m.payload)["seq"] for m in sub.on("/telemetry/")), default=0)

        assert sub.wait_for(lambda ms: newest() >= highest, 30), final.output()[-3000:]
        assert final.terminate() == 0
    finally:
        stop.set()
        sub.close()
        broker.stop()
    payloads: dict[int, set[bytes]] = {}
    for m in sub.on("/telemetry/"):
        payloads.setdefault(json.loads(m.payload)["seq"], set()).add(m.payload)
    reused = sorted(seq for seq, p in payloads.items() if len(p) > 1)
    assert not reused, f"seqs used for two different readings: {reused[:10]}"
    print(f"\nchain {chain}: {kills} SIGKILLs, {flaps} broker restarts: {len(seen)} accepted "
          f"readings seen in the buffer, all delivered; {len(payloads)} readings, "
          f"no seq reused")  # fmt: skip
