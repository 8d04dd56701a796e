from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from tests import mqtt_fixtures
from tests.mqtt_fixtures import Broker, NatsCluster, make_broker
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-xdist hands out tests in collection order (after whole xdist_groups): a test of a
    # minute that starts last ends the leg a minute after the others. Long ones go first.
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session", autouse=True)
def port_claims(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The directory where free_port() claims ports for the whole session: under pytest-xdist
    the parent of a worker's basetemp (popen-gwN) is the session's, shared by all workers."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    claims = shared / "ports"
    claims.mkdir(exist_ok=True)
    mqtt_fixtures.PORT_CLAIMS = claims


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


# The brokers the agent must work with: mosquitto (MQTT 5) and a three-server NATS cluster
# (MQTT 3.1.1, sessions and retained messages in JetStream). See docs/scaling.md.
# NATS is exercised on one leg of CI only (marker one_leg): what it checks is the broker, not
# the Python version.
BROKER_KINDS = ("mosquitto", pytest.param("nats", marks=pytest.mark.one_leg))


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto with docs/security.md's password file and ACL (tests/acl_broker.py)."""
    from tests.acl_broker import secured_broker  # it imports REPO from here

    with secured_broker(tmp_path) as b:
        yield b


@pytest.fixture(params=BROKER_KINDS)
def any_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker | NatsCluster]:
    b = make_broker(request.param, tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def node_config(port: int, state_dir: Path, *, devices: str = "", extra: str = "",
                broker_extra: str = "", host: str = "127.0.0.1",
                protocol: str = "") -> str:  # fmt: skip
    if protocol:
        broker_extra = f'protocol = "{protocol}"\n{broker_extra}'
    devices = devices or textwrap.dedent("""
        [[devices]]
        name = "climate"
        driver = "bme280"
        interval = 1
    """)
    return (
        textwrap.dedent(f"""
        [node]
        id = "test-node"
        simulate = true
        clock = "synced"
        state_dir = "{state_dir}"
        health_interval = 5
        {extra}
        [broker]
        host = "{host}"
        port = {port}
        reconnect_min = 0.2
        reconnect_max = 1
        {broker_extra}
    """)
        + devices
    )


class AgentProcess:
    """The agent as a real subprocess, as systemd would run it."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self.log, "ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", str(self.config), "--log-level", "DEBUG"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # stacks into the log, for the failure report
            wait_until(lambda: "most recent call first" in self.output(), 2)
            raise AssertionError(
                f"agent did not stop on SIGTERM:\n{self.output()[-6000:]}"
            ) from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[Callable[[str], AgentProcess]]:
    started: list[AgentProcess] = []

    def make(config_text: str) -> AgentProcess:
        path = tmp_path / f"node{len(started)}.toml"
        path.write_text(config_text)
        agent = AgentProcess(path, tmp_path / f"agent{len(started)}.log")
        started.append(agent)
        return agent

    yield make
    for a in started:
        if a.proc is not None and a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait(10)
