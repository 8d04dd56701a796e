"""Issue 18: every command speaks plainly - one line of error with a fix, a non-zero exit on
failure, no traceback (only with --log-level DEBUG), prompt ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.mqtt_fixtures import Broker, free_port

DEMO = str(REPO / "firmware_configs" / "demo.toml")


def roomagent(*args: str, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})  # fmt: skip


def test_watch_says_it_cannot_connect_and_fails() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = roomagent("watch", "--host", "127.0.0.1", "--port", str(port), "--seconds", "30")
    assert time.monotonic() - started < 25  # not the whole --seconds, and not forever
    assert result.returncode == 1
    assert f"connecting to 127.0.0.1:{port}..." in result.stderr
    assert f"cannot connect to 127.0.0.1:{port}: Connection refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_watch_says_connected_and_ends_cleanly(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    try:
        result = roomagent("watch", "--port", str(broker.port), "--host", "127.0.0.1",
                           "--seconds", "1")  # fmt: skip
    finally:
        broker.stop()
    assert result.returncode == 0, result.stderr
    assert "connected; showing roomagent/#" in result.stderr


def test_scan_ble_without_time_refuses_and_mentions_simulate() -> None:
    result = roomagent("scan-ble", "--seconds", "0", timeout=20)
    assert result.returncode == 2
    assert "--seconds must be more than 0" in result.stderr and "--simulate" in result.stderr


def test_scan_ble_without_bluez_ends_promptly_and_mentions_simulate() -> None:
    no_bluez = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/system_bus_socket"}
    started = time.monotonic()
    result = roomagent("scan-ble", "--seconds", "40", env=no_bluez, timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert "the scan did not run" in result.stdout and "--simulate" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_closed_pipe_gives_no_traceback() -> None:
    """`roomagent check-config ... | head -0`: the reader is gone before the output."""
    proc = subprocess.Popen([sys.executable, "-m", "agent", "check-config", DEMO], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / "scripts" / name), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_demo_script_has_help_and_refuses_bad_arguments() -> None:
    shown = script("demo.sh", "--help")
    assert shown.returncode == 0 and "scripts/demo.sh [--seconds N]" in shown.stdout
    for argv, words in ((["--seconds"], "--seconds needs a whole number"),
                        (["--seconds", "soon"], "--seconds needs a whole number"),
                        (["--bogus"], "unknown argument '--bogus'")):  # fmt: skip
        result = script("demo.sh", *argv)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert "unbound variable" not in result.stderr and "==>" not in result.stdout


def test_test_script_has_help_and_refuses_bad_arguments() -> None:
    shown = script("test.sh", "--help")
    assert shown.returncode == 0 and "scripts/test.sh [--python PYTHON]" in shown.stdout
    for argv, words in ((["--python"], "--python needs an interpreter"),
                        (["-x"], "pytest's own options go after --")):  # fmt: skip
        result = script("test.sh", *argv)
        assert result.returncode == 2 and words in result.stderr, result.stderr
