"""Running under systemd: sd_notify (READY, STATUS, WATCHDOG, STOPPING), a watchdog that stops
when the agent stops making progress, and a hung driver that cannot take the agent down."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.app.runtime import Agent
from agent.app.systemd import Notifier
from agent.config import schema as config_mod
from agent.sensing.bus_choice import Hardware
from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker, free_port
from tests.waiting import until


class NotifySocket:
    """What systemd listens on: a unix datagram socket, collecting what the agent says."""

    def __init__(self) -> None:
        # sun_path is at most 107 bytes: pytest's tmp_path can be longer, so a short dir.
        self.dir = tempfile.mkdtemp(prefix="notify-", dir="/tmp")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def collect(self, seconds: float, until: str = "") -> list[dict[str, str]]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))
            if until and until in fields:
                break
        return [m for _, m in self.messages]

    def times_of(self, key: str) -> list[float]:
        return [t for t, m in self.messages if key in m]

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    s = NotifySocket()
    yield s
    s.close()


def test_notify_ready_status_watchdog_and_stopping(
    tmp_path: Path, broker: Broker, notify_socket: NotifySocket
) -> None:
    agent = AgentProcess(tmp_path / "node.toml", tmp_path / "agent.log")
    agent.config.write_text(node_config(broker.port, tmp_path / "state"))
    os.environ["NOTIFY_SOCKET"] = notify_socket.path
    os.environ["WATCHDOG_USEC"] = "1000000"  # 1 s: pings every 0.5 s
    try:
        agent.start()
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    try:
        check_notifications(agent, notify_socket)
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()


def check_notifications(agent: AgentProcess, notify_socket: NotifySocket) -> None:
    messages = notify_socket.collect(20, until="READY")
    ready = [m for m in messages if "READY" in m]
    assert ready, agent.output()
    # READY=1 comes once the device has been opened and read: the status says it is up.
    assert ready[0]["READY"] == "1"
    assert ready[0]["STATUS"].endswith("devices 1/1 up"), ready[0]
    notify_socket.collect(3)
    pings = notify_socket.times_of("WATCHDOG")
    assert len(pings) >= 4, notify_socket.messages  # ~6 expected in 3 s at 0.5 s
    assert max(b - a for a, b in zip(pings, pings[1:])) < 1.0  # never late for the 1 s limit
    statuses = [m["STATUS"] for m in notify_socket.collect(0) if "STATUS" in m]
    assert any(s.startswith("connected; backlog ") for s in statuses), statuses
    assert agent.terminate() == 0
    assert {"STOPPING": "1", "STATUS": "stopping"} in notify_socket.collect(2, until="STOPPING")


def in_process_agent(tmp_path: Path, notifier: Notifier, devices: str) -> Agent:
    path = tmp_path / "node.toml"
    # No broker on this port: the agent buffers, which is all these tests need.
    path.write_text(node_config(free_port(), tmp_path / "state", devices=devices))
    cfg = config_mod.load(path)
    return Agent(cfg, simulate=True, notifier=notifier,
                 hardware=Hardware(cfg.devices, simulate=True))  # fmt: skip


TWO_ON_ONE_BUS = """
[[devices]]
name = "stuck"
driver = "bme280"
interval = 1
timeout = 0.5
unavailable_after = 2
[[devices]]
name = "fine"
driver = "bmp280"
address = 0x77
interval = 1
"""


def test_a_hung_driver_is_timed_out_and_the_rest_keeps_running(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1000000"})
    agent = in_process_agent(tmp_path, notifier, TWO_ON_ONE_BUS)
    release = threading.Event()
    seen: dict[str, object] = {}

    def read_that_never_returns() -> object:
        # A driver stuck in a loop of its own (not holding the bus: a wedged bus would take
        # every device on it down, which the agent reports the same way, device by device).
        release.wait()
        raise OSError("released at the end of the test")

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.ensure_future(agent.run(stop))
        assert await until(
            lambda: len(agent.runners) == 2 and all(r.available for r in agent.runners)
        )
        stuck, fine = agent.runners
        rows_before = agent.outbox.stats().rows  # type: ignore[union-attr]
        stuck.driver.read = read_that_never_returns  # type: ignore[method-assign]
        seen["hung"] = time.monotonic()
        await asyncio.sleep(6)  # the scenario: a device stuck for 6 s
        seen["stuck"] = (stuck.available, stuck.failures)
        seen["fine"] = fine.available
        seen["rows"] = agent.outbox.stats().rows - rows_before  # type: ignore[union-attr]
        seen["status"] = agent.status_line()
        stop.set()
        await run

    collector = threading.Thread(target=notify_socket.collect, args=(10,), daemon=True)
    collector.start()
    asyncio.run(scenario())
    release.set()
    collector.join()
    assert seen["stuck"][0] is False and seen["stuck"][1] >= 2  # type: ignore[index]
    assert seen["fine"] is True
    # "fine" kept reading once a second on the same bus while "stuck" hung: ~6 readings.
    assert seen["rows"] >= 4, seen
    assert str(seen["status"]).startswith("broker unreachable; backlog ")
    assert str(seen["status"]).endswith("; devices 1/2 up")
    # The loop and the buffer were fine, so the watchdog kept being fed throughout.
    pings = [t for t in notify_socket.times_of("WATCHDOG") if t > seen["hung"]]  # type: ignore[operator]
    assert len(pings) >= 8 and max(b - a for a, b in zip(pings, pings[1:])) < 1.0
    # And the hung thread does not keep the agent from stopping: run() returned.


def test_the_watchdog_is_not_fed_while_the_writer_or_the_loop_is_stuck(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "600000"})
    agent = in_process_agent(tmp_path, notifier, "")
    blocked, release = threading.Event(), threading.Event()
    marks: dict[str, float] = {}

    def wedge() -> None:  # the writer thread stuck in I/O (an SD card that stopped answering)
        blocked.set()
        release.wait()

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.ensure_future(agent.run(stop))
        await asyncio.sleep(2)  # the scenario (read by the watchdog's pings): running, ...
        marks["wedged"] = time.monotonic()
        agent._db_thread.submit(wedge)
        await asyncio.sleep(3)  # ... its writer wedged for 3 s, ...
        marks["released"] = time.monotonic()
        release.set()
        await asyncio.sleep(2)  # ... running again, ...
        marks["loop_stuck"] = time.monotonic()
        time.sleep(2.5)  # the event loop itself stuck (a blocking call where none belongs)
        marks["loop_free"] = time.monotonic()
        await asyncio.sleep(2)  # ... and running again
        stop.set()
        await run

    collector = threading.Thread(target=notify_socket.collect, args=(12,), daemon=True)
    collector.start()
    asyncio.run(scenario())
    collector.join()
    pings = notify_socket.times_of("WATCHDOG")
    before = [t for t in pings if t < marks["wedged"]]
    during = [t for t in pings if marks["wedged"] + 0.4 < t < marks["released"]]
    after = [t for t in pings if marks["released"] < t < marks["loop_stuck"]]
    assert len(before) >= 3 and len(after) >= 3, pings
    assert during == []  # systemd would have killed it after 0.6 s without a ping
    stuck_loop = [t for t in pings if marks["loop_stuck"] + 0.4 < t < marks["loop_free"]]
    assert stuck_loop == [] and any(t > marks["loop_free"] for t in pings), pings
