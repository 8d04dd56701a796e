"""Stopping the agent while it is still in its first poll round (install.sh's restart can come
milliseconds after a start): it stops cleanly, with nothing for asyncio to complain about."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import pytest

from agent.app.runtime import Agent
from agent.app.systemd import Notifier
from agent.config import schema as config_mod
from agent.sensing.bus_choice import Hardware
from tests.conftest import node_config
from tests.mqtt_fixtures import free_port

SLOW_FIRST_READ = """
[[devices]]
name = "climate"
driver = "bme280"
interval = 1
timeout = 5
"""


def test_stop_during_the_first_poll_round_leaves_no_unretrieved_future(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "node.toml"
    path.write_text(node_config(free_port(), tmp_path / "state", devices=SLOW_FIRST_READ))
    cfg = config_mod.load(path)
    agent = Agent(cfg, simulate=True, notifier=Notifier({}),
                  hardware=Hardware(cfg.devices, simulate=True))  # fmt: skip

    async def main() -> None:
        stop = asyncio.Event()
        stop.set()  # already asked to stop when the first round begins: nothing read yet
        await agent.run(stop)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        asyncio.run(main())
        gc.collect()  # asyncio logs an unretrieved exception when its future is collected
    assert agent.runners and not agent.runners[0].first_poll.is_set(), "stopped too late"
    complaints = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert not [m for m in complaints if "never retrieved" in m], complaints
