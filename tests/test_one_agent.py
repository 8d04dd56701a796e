"""Issue 18: one agent per node, and a clear exit when its state directory cannot be used.

Two agents on one state directory used to reuse sequence numbers for different readings and
kick each other off the broker; a read-only state directory after an unclean stop gave a
traceback and exit 1 (systemd restarting forever) instead of the documented exit 3.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.app.cli import EXIT_BUFFER, EXIT_LOCKED
from agent.app.node_lock import NodeLock, StateDirLocked
from agent.config.schema import BrokerConfig
from agent.mqtt.link import MqttLink
from agent.pipeline.outbox import Outbox, OutboxError
from tests.conftest import REPO, node_config
from tests.mqtt_fixtures import Broker

HOLDER = """
import sys, time
from pathlib import Path
from agent.app.node_lock import NodeLock
lock = NodeLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def wait_for(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@contextlib.contextmanager
def holder(state_dir: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_dir)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def run_agent(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", "run", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_second_agent_exits_at_once_naming_the_first(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "node.toml"
    config.write_text(node_config(1, state))  # the broker is never reached: no need of one
    with holder(state) as first:
        started = time.monotonic()
        result = run_agent(config)
        took = time.monotonic() - started
        assert result.returncode == EXIT_LOCKED, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert f"another roomagent (pid {first.pid}) is already running" in lines[0]
        assert str(state) in lines[0]
        assert took < 30  # at once: not after any connection attempt or timeout
        # Nothing was written by the second: no buffer was opened.
        assert not (state / "buffer.sqlite").exists()


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with holder(state) as first:
        with pytest.raises(StateDirLocked) as info:
            NodeLock(state).acquire()
        assert info.value.pid == first.pid
        first.send_signal(signal.SIGKILL)  # no clean-up runs
        first.wait(10)
    lock = NodeLock(state).acquire()  # no stale lock to remove by hand
    assert (state / "agent.lock").read_text().strip() == str(os.getpid())
    lock.release()


def make_unclean_buffer(path: Path) -> None:
    """A buffer left by a process that died without closing it: a WAL with unmerged commits."""
    code = ("import os, sys\nfrom pathlib import Path\nfrom agent.pipeline.outbox import Outbox\n"
            "box = Outbox(Path(sys.argv[1]), max_rows=1000, max_bytes=10**7)\n"
            "for _ in range(50): box.append('t', lambda seq: b'x' * 100)\n"
            "os._exit(0)\n")  # fmt: skip
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, check=True, timeout=60)
    assert path.with_name(path.name + "-wal").exists()


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """`directory` on a read-only bind mount (root needs it: chmod does not stop root)."""
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)  # lazy: even if busy


def test_a_read_only_buffer_after_an_unclean_stop_is_an_outbox_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    make_unclean_buffer(state / "buffer.sqlite")
    with read_only(state), pytest.raises(OutboxError, match="read-only"):
        Outbox(state / "buffer.sqlite", max_rows=1000, max_bytes=10**7)


def test_run_on_a_read_only_state_directory_exits_3_with_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    make_unclean_buffer(state / "buffer.sqlite")
    config = tmp_path / "node.toml"
    config.write_text(node_config(1, state))
    with read_only(state):
        result = run_agent(config)
    assert result.returncode == EXIT_BUFFER, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "read-only" in result.stderr and str(state) in result.stderr


def test_a_client_id_collision_is_logged_as_a_session_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    cfg = BrokerConfig(host="127.0.0.1", port=broker.port, client_id="roomagent-twin",
                       reconnect_min=0.2, reconnect_max=0.5)  # fmt: skip
    links = [MqttLink(cfg, status_topic="roomagent/twin/status") for _ in range(2)]
    caplog.set_level(logging.WARNING, logger="roomagent.mqtt")
    try:
        for link in links:
            link.start()
        # Mosquitto closes the older connection without a reason code; the two keep taking the
        # session from each other, as two agents with one id did.
        wait_for(lambda: "session taken over" in caplog.text, timeout=60)
    finally:
        for link in links:
            link.stop(timeout=1)
        broker.stop()
    line = next(r.getMessage() for r in caplog.records if "session taken over" in r.getMessage())
    assert "'roomagent-twin'" in line
