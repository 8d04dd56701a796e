"""The systemd unit: it must verify without a single warning, and stay well hardened."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# test.sh installs systemd-analyze (package systemd) when missing: no skip hides its absence.
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "systemd-analyze"


def render(tmp_path: Path) -> Path:
    """The unit as scripts/install.sh writes it, pointing at this test's interpreter."""
    config = REPO / "firmware_configs" / "demo.toml"
    text = (REPO / "scripts" / "roomagent.service").read_text()
    text = text.replace("@VENV@", sys.prefix).replace("@CONFIG@", str(config))
    text = text.replace("@DOCS@", str(REPO / "docs"))
    unit = tmp_path / "roomagent.service"
    unit.write_text(text)
    return unit


def test_unit_verifies_without_warnings(tmp_path: Path) -> None:
    unit = render(tmp_path)
    assert (Path(sys.prefix) / "bin" / "roomagent").exists()  # what ExecStart names
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    assert result.returncode == 0 and result.stderr == "" and result.stdout == "", result


def test_unit_exposure_is_below_3(tmp_path: Path) -> None:
    unit = render(tmp_path)
    result = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", str(unit)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    match = re.search(r"Overall exposure level for roomagent\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    print(f"systemd-analyze security exposure: {exposure}")
    assert exposure < 3.0


def test_unit_is_notify_with_watchdog_restart_and_unprivileged_user() -> None:
    text = (REPO / "scripts" / "roomagent.service").read_text()
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    assert settings["Type"] == "notify" and settings["Restart"] == "always"
    assert settings["User"] == "roomagent" and settings["NoNewPrivileges"] == "yes"
    assert int(settings["WatchdogSec"]) >= 10
    assert int(settings["StartLimitBurst"]) >= 5 and int(settings["StartLimitIntervalSec"]) > 0
